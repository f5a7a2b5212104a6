/**
 * tsp2p: peer-to-peer messaging over HTTP for Node.js, wire-compatible with gop2p.
 *
 * @example
 * ```ts
 * import { Node } from 'tsp2p';
 * const node = new Node({ port: 5001 });
 * await node.start();
 * node.on('message', (msg) => console.log(msg.from.address, msg.text));
 * await node.connect('127.0.0.1:5000');
 * await node.broadcast('hello');
 * ```
 *
 * @packageDocumentation
 */

export { type Clock, ManualClock, SystemClock, systemClock, type TimerHandle } from './clock.js';
export {
  AddressInUseError,
  AlreadyStartedError,
  ConnectFailedError,
  type ConnectFailureReason,
  ForbiddenError,
  InvalidAddressError,
  InvalidMessageError,
  InvalidOptionsError,
  InvalidTopicError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  P2PError,
  type P2PErrorCode,
  PeerRefusedError,
  PeerUnreachableError,
  ProtocolError,
  StoppedError,
  StoreCorruptError,
  StoreLockedError,
  StoreVersionError,
  TagsTooLargeError,
  TimeoutError,
  UnauthorizedError,
  UnknownPeerError,
} from './errors.js';
export {
  checkKeyFileMode,
  fingerprint,
  generateIdentity,
  type Identity,
  type IdentityFileOptions,
  type IdentityInput,
  identityFromSeed,
  loadOrCreateIdentityFile,
} from './identity.js';
export { createDebugLogger, type LogFields, type Logger, noopLogger } from './logger.js';
export type { MemberState } from './membership/member-table.js';
export { Node } from './node.js';
export { DEFAULTS, type NodeOptions, type RetentionInput } from './options.js';
export {
  describePeer,
  formatHostPort,
  type HostPort,
  type Peer,
  type PeerAddressInput,
  type PeerJson,
  type PeerKind,
  parseAddress,
  peerJson,
} from './peer.js';
export { type Envelope, MessageType, PROTOCOL_VERSION, type WirePeer } from './protocol/schema.js';
export { type Random, SeededRandom, SystemRandom } from './random.js';
export {
  DEFAULT_MAX_TAG_BYTES,
  isValidTopic,
  parseTagList,
  TAG_LIMITS,
  type Tags,
  TOPIC_LIMITS,
  tagBytes,
  validateTags,
  validateTopic,
} from './rooms.js';
export type { SecretInput } from './security/keyring.js';
export { DEFAULT_LIMITS, DEFAULT_MAX_CLOCK_SKEW_MS, type LimitOptions } from './security/limits.js';
export { HttpTransport, type HttpTransportOptions } from './transport/http.js';
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
  MemoryTransport,
} from './transport/memory.js';
export type { PemInput, TlsOptions } from './transport/tls.js';
export type {
  InboundHandler,
  InboundRequest,
  InboundResponse,
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  ResponseStream,
  Transport,
} from './transport/transport.js';
export type {
  CallOptions,
  ConnectReport,
  DeliveryFailure,
  DeliveryReport,
  DisconnectOptions,
  HistoryOptions,
  LeaveReport,
  MemberInfo,
  Message,
  MessagesOptions,
  NodeEvents,
  NodeStatus,
  Payload,
  PeerRefusal,
  PeerRefusalReason,
  SentMessage,
  Target,
} from './types.js';

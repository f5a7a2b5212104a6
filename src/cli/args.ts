/**
 * Command-line parsing (pure: no I/O). `node:util` parseArgs in strict mode, then the checks
 * parseArgs cannot do: the subcommand, port ranges and addresses.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { formatHostPort, parseAddress, parseTagList } from '../index.js';

/** The subcommands that run a node. */
export type RunCommand = 'chat' | 'node';

/** The flags shared by `chat` and `node`. */
export interface NodeFlags {
  /** Interface to listen on; undefined leaves the library default (127.0.0.1). */
  readonly host: string | undefined;
  /** Port to listen on; 0 is any free port. */
  readonly port: number;
  /**
   * The `host:port` other nodes should use (`--advertise`), when it differs from where the node
   * listens: behind NAT, a published container port, a proxy. Undefined: the listening address.
   */
  readonly advertise: string | undefined;
  /** The entry point to join at start, as `host:port`. */
  readonly join: string | undefined;
  /** The display name; undefined picks a default. */
  readonly name: string | undefined;
  /** Compat mode: also talk to gop2p nodes. */
  readonly gop2p: boolean;
  /** The node's tags (`--tags k=v,...`), checked against the default `maxTagBytes`. */
  readonly tags: Readonly<Record<string, string>>;
  /** The network secrets, the sending one first (`--secret`, repeatable or comma-separated). */
  readonly secret: readonly string[];
  /** The key file (`--identity`); undefined picks one in the data directory. */
  readonly identity: string | undefined;
  /** Accept a key file the group or others can read (`--allow-readable-identity`). */
  readonly allowReadableIdentity: boolean;
  /**
   * The node's data directory (`--data`): its database (history, members, delivery state).
   * Undefined: `tsp2p chat` keeps one per identity next to its key, `tsp2p node` keeps none.
   */
  readonly data: string | undefined;
  /** HTTPS (`--tls-key`, `--tls-cert`, `--tls-ca`, `--tls-client-auth`): file paths as given. */
  readonly tls: TlsFlags | undefined;
  /** `tsp2p node --no-input`: read no stdin; run until SIGTERM or SIGINT. */
  readonly noInput: boolean;
  /** `tsp2p chat`: show `HH:MM` before each line on a terminal (`--no-time` turns it off). */
  readonly time: boolean;
}

/** The TLS flags: the node's key and certificate, the CA peers are checked against, mutual TLS. */
export interface TlsFlags {
  readonly key: string;
  readonly cert: string;
  readonly ca: string | undefined;
  /** Mutual TLS: ask every client for a certificate signed by `ca`. */
  readonly clientAuth: boolean;
}

/** What the command line asks for. */
export type Invocation =
  | { readonly kind: 'help'; readonly topic: RunCommand | undefined }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly command: RunCommand; readonly flags: NodeFlags };

/** A command line that cannot run. The CLI prints its message on one line and exits with code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  advertise: { type: 'string' },
  join: { type: 'string' },
  name: { type: 'string' },
  tags: { type: 'string' },
  gop2p: { type: 'boolean' },
  secret: { type: 'string', multiple: true },
  identity: { type: 'string' },
  'allow-readable-identity': { type: 'boolean' },
  data: { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-client-auth': { type: 'boolean' },
  'no-input': { type: 'boolean' },
  'no-time': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

const COMMANDS: readonly string[] = ['chat', 'node'];

/**
 * Parses the arguments after `tsp2p`.
 *
 * @throws {UsageError} for an unknown flag or command, a missing value, or a bad port or address.
 */
export function parseCommandLine(argv: readonly string[]): Invocation {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(describeParseError(err));
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  if (values.version) return { kind: 'version' };

  if (first === 'help') {
    if (rest.length > 1) throw new UsageError(`unexpected argument '${rest[1]}'`);
    return { kind: 'help', topic: helpTopic(rest[0]) };
  }
  if (first !== undefined && !COMMANDS.includes(first)) {
    throw new UsageError(`unknown command '${first}': the commands are chat and node`);
  }
  const command = first as RunCommand | undefined;
  if (values.help) return { kind: 'help', topic: command };
  if (command === undefined) {
    const given = Object.keys(values);
    if (given.length > 0) throw new UsageError(`--${given[0]} needs a command first, as in 'tsp2p chat'`);
    return { kind: 'help', topic: undefined };
  }
  if (rest.length > 0) {
    throw new UsageError(`unexpected argument '${rest[0]}' (to send a message, type it once the chat runs)`);
  }
  if (values['no-input'] && command !== 'node') {
    throw new UsageError("--no-input is for 'tsp2p node' (the chat reads what you type)");
  }
  if (values['no-time'] && command !== 'chat') {
    throw new UsageError("--no-time is for 'tsp2p chat' (the node prints JSON)");
  }
  return {
    kind: 'run',
    command,
    flags: {
      host: values.host,
      port: values.port === undefined ? 0 : parsePort(values.port),
      advertise: values.advertise === undefined ? undefined : parseAdvertise(values.advertise),
      join: values.join === undefined ? undefined : parseJoin(values.join),
      name: values.name === undefined ? undefined : parseName(values.name),
      gop2p: values.gop2p ?? false,
      tags: values.tags === undefined ? {} : parseTags(values.tags),
      secret: parseSecrets(values.secret ?? []),
      identity: values.identity,
      allowReadableIdentity: values['allow-readable-identity'] ?? false,
      data: values.data === undefined ? undefined : parseData(values.data),
      tls: parseTls(
        values['tls-key'],
        values['tls-cert'],
        values['tls-ca'],
        values['tls-client-auth'] ?? false,
      ),
      noInput: values['no-input'] ?? false,
      time: !(values['no-time'] ?? false),
    },
  };
}

function parseData(text: string): string {
  if (text.trim() === '')
    throw new UsageError('--data needs a directory, as in --data ./ada (or leave it out)');
  return text;
}

function parseName(text: string): string {
  if (text.trim() === '') throw new UsageError('--name needs a name, as in --name ada (or leave it out)');
  return text;
}

function parseTls(
  key: string | undefined,
  cert: string | undefined,
  ca: string | undefined,
  clientAuth: boolean,
): TlsFlags | undefined {
  if (key === undefined && cert === undefined) {
    if (ca !== undefined || clientAuth) {
      const flag = ca !== undefined ? '--tls-ca' : '--tls-client-auth';
      throw new UsageError(`${flag} needs --tls-key and --tls-cert (this node's key and certificate)`);
    }
    return undefined;
  }
  if (key === undefined || cert === undefined) {
    throw new UsageError('--tls-key and --tls-cert go together: give both, or neither');
  }
  if (key === '' || cert === '' || ca === '')
    throw new UsageError('--tls-key, --tls-cert, --tls-ca need a file');
  if (clientAuth && ca === undefined) {
    throw new UsageError("--tls-client-auth needs --tls-ca, the CA that signs the clients' certificates");
  }
  return { key, cert, ca, clientAuth };
}

function helpTopic(topic: string | undefined): RunCommand | undefined {
  if (topic === undefined) return undefined;
  if (!COMMANDS.includes(topic))
    throw new UsageError(`no help for '${topic}': the commands are chat and node`);
  return topic as RunCommand;
}

function parseSecrets(given: readonly string[]): string[] {
  const list = given.flatMap((s) => s.split(',')).map((s) => s.trim());
  for (const s of list) {
    if (s.length < 16) {
      throw new UsageError('--secret needs at least 16 characters (e.g. from: openssl rand -base64 24)');
    }
  }
  return list;
}

function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`--port must be a number from 0 to 65535 (0 picks a free port), got '${text}'`);
  }
  return port;
}

function parseAdvertise(text: string): string {
  try {
    const { host, port } = parseAddress(text.trim());
    return formatHostPort(host, port);
  } catch (err) {
    throw new UsageError(`--advertise: ${(err as Error).message}`);
  }
}

function parseJoin(text: string): string {
  try {
    return normalizeAddress(text);
  } catch (err) {
    throw new UsageError(`--join: ${(err as Error).message}`);
  }
}

/**
 * Normalizes what a person types to name a node: `host:port`, `http://host:port`, or a bare
 * port, meaning this machine (as gop2p's `connect <port>`).
 *
 * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` when it is none of these.
 */
export function normalizeAddress(text: string): string {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return normalizeAddress(`127.0.0.1:${trimmed}`);
  const { host, port, scheme } = parseAddress(trimmed);
  return scheme === 'https' ? `https://${formatHostPort(host, port)}` : formatHostPort(host, port);
}

function describeParseError(err: unknown): string {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted ?? message}' (see 'tsp2p --help')`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = quoted?.split(' ')[0];
      if (flag && /does not take an argument/.test(message)) return `${flag} takes no value`;
      if (flag) return `${flag} needs a value, as in '${flag}=${flag === '--port' ? '6001' : '...'}'`;
      return message.split('\n')[0] ?? message;
    }
    default:
      return message.split('\n')[0] ?? message;
  }
}

/** `--tags k=v,...`, as a usage error (one line, exit 2) when malformed or too large. */
function parseTags(text: string): Record<string, string> {
  try {
    return parseTagList(text);
  } catch (err) {
    throw new UsageError(`--tags: ${(err as Error).message}`);
  }
}

/**
 * The conversation a node's page opens with, read from its history (`node.history()`): the
 * plain broadcasts, the publishes of each of its topics, and the direct messages with each
 * member it knows (departed and failed ones too), merged by time. The terminal chat prints from
 * the same log, so the two show one conversation.
 *
 * @module
 */

import type { HistoryOptions, MemberInfo, Message } from '../types.js';
import type { RecentMessages } from '../web/recent-messages.js';

/** What the conversation is read from: the node's public methods. */
export interface HistorySource {
  history(options?: HistoryOptions): Promise<Message[]>;
  topics(): string[];
  memberStates(): MemberInfo[];
}

/** The last `n` messages of every kind, oldest first (by their senders' timestamps). */
export async function conversation(node: HistorySource, n: number): Promise<Message[]> {
  const queries: HistoryOptions[] = [
    { limit: n },
    ...node.topics().map((topic) => ({ topic, limit: n })),
    ...node.memberStates().map((m) => ({ with: m.peer.id, limit: n })),
  ];
  const parts = await Promise.all(queries.map((q) => node.history(q).catch((): Message[] => [])));
  return parts
    .flat()
    .sort((a, b) => a.at - b.at)
    .slice(-n);
}

/** {@link conversation} behind the web layer's interface. */
export function historyConversation(node: HistorySource): RecentMessages {
  return { recent: (n) => conversation(node, n) };
}

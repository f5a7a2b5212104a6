/**
 * What one input line of `tsp2p node` means (pure: no I/O).
 *
 * - A plain line is a broadcast of the line as it is.
 * - A line that starts with `{` is a command, and must be one exactly:
 *   - `{"text": T}`: a broadcast of T;
 *   - `{"to": TO, "text": T}`: a direct message; TO is an address, a member's name or id, or a
 *     list of them;
 *   - `{"topic": NAME, "text": T}`, `{"subscribe": NAME}`, `{"unsubscribe": NAME}`: topics.
 *
 *   Anything else that starts with `{` (a missing brace, an unknown or misspelt field, a wrong
 *   type) is invalid, and is never sent: a typo must not turn a direct message into a public one.
 * - An empty message is never sent: an empty line is skipped, an empty `"text"` is invalid.
 *
 * @module
 */

/** One parsed input line. */
export type NodeInput =
  | { readonly kind: 'empty' }
  | { readonly kind: 'broadcast'; readonly text: string }
  | { readonly kind: 'direct'; readonly to: readonly string[]; readonly text: string }
  | { readonly kind: 'publish'; readonly topic: string; readonly text: string }
  | { readonly kind: 'subscribe' | 'unsubscribe'; readonly topics: readonly string[] }
  | { readonly kind: 'invalid'; readonly message: string };

/** The fields each command has, all required. */
const SHAPES: readonly (readonly string[])[] = [
  ['text'],
  ['to', 'text'],
  ['topic', 'text'],
  ['subscribe'],
  ['unsubscribe'],
];

const FORMS = '{"text":"..."}, {"to":"H:P or name","text":"..."}, {"topic":"...","text":"..."}';

function invalid(why: string): NodeInput {
  return { kind: 'invalid', message: `${why}: nothing was sent` };
}

/** Parses one input line. */
export function parseNodeLine(line: string): NodeInput {
  if (line.trim() === '') return { kind: 'empty' };
  if (!line.trimStart().startsWith('{')) return { kind: 'broadcast', text: line };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return invalid(`a line that starts with '{' must be a JSON command (${FORMS})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(`a line that starts with '{' must be a JSON command (${FORMS})`);
  }
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields);
  const unknown = keys.find((k) => !SHAPES.some((shape) => shape.includes(k)));
  if (unknown !== undefined) return invalid(`unknown field ${JSON.stringify(unknown)} (${FORMS})`);
  const shape = SHAPES.find((s) => s.length === keys.length && s.every((k) => k in fields));
  if (shape === undefined) {
    if (keys.length > 0 && !keys.includes('text') && (keys.includes('to') || keys.includes('topic'))) {
      return invalid('a message needs "text"');
    }
    return invalid(
      `fields ${keys.map((k) => JSON.stringify(k)).join(', ') || 'none'} do not make a command (${FORMS})`,
    );
  }
  if ('subscribe' in fields || 'unsubscribe' in fields) {
    const kind = 'subscribe' in fields ? 'subscribe' : 'unsubscribe';
    const topics = stringList(fields[kind]);
    if (topics === undefined) return invalid(`"${kind}" must be a topic name or a list of them`);
    return { kind, topics };
  }
  const text = fields.text;
  if (typeof text !== 'string') return invalid('"text" must be a string');
  if (text.trim() === '') return invalid('the message is empty');
  if ('to' in fields) {
    const to = stringList(fields.to);
    if (to === undefined) return invalid('"to" must be "H:P", a member\'s name, or a list of them');
    return { kind: 'direct', to, text };
  }
  if ('topic' in fields) {
    const topic = fields.topic;
    if (typeof topic !== 'string' || topic === '') return invalid('"topic" must be a topic name');
    return { kind: 'publish', topic, text };
  }
  return { kind: 'broadcast', text };
}

/** A non-empty string, or a non-empty list of them. */
function stringList(value: unknown): string[] | undefined {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((v) => typeof v === 'string' && v.trim() !== '')) return undefined;
  return list as string[];
}

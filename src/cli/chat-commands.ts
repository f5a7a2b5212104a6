/**
 * What a line typed in the chat means (pure: no I/O).
 *
 * @module
 */

/** How many messages of history the chat prints on start, on `/join`, and for a bare `/history`. */
export const HISTORY_LINES = 20;

/** The most `/history N` prints. */
export const MAX_HISTORY_LINES = 10_000;

/** One line of chat input, parsed. */
export type ChatCommand =
  | { readonly kind: 'empty' }
  | { readonly kind: 'broadcast'; readonly text: string }
  | { readonly kind: 'connect'; readonly target: string | undefined }
  | { readonly kind: 'disconnect' }
  | { readonly kind: 'dm'; readonly target: string; readonly text: string }
  | { readonly kind: 'peers' }
  | { readonly kind: 'join-room'; readonly room: string }
  | { readonly kind: 'leave-room'; readonly room: string | undefined }
  | { readonly kind: 'rooms' }
  | { readonly kind: 'history'; readonly count: number }
  | { readonly kind: 'help' }
  | { readonly kind: 'exit' }
  | { readonly kind: 'mistake'; readonly message: string };

/**
 * Parses one line. Plain text is a broadcast. Commands start with `/`; gop2p's bare words
 * `connect <port>`, `disconnect` and `exit` work too. `//text` broadcasts `/text`.
 */
export function parseChatLine(line: string): ChatCommand {
  const trimmed = line.trim();
  if (trimmed === '') return { kind: 'empty' };
  if (trimmed === 'exit' || trimmed === 'disconnect') return { kind: trimmed };
  const bare = /^connect\s+(\S+)$/.exec(trimmed);
  if (bare) return { kind: 'connect', target: bare[1] };
  if (trimmed.startsWith('//')) return { kind: 'broadcast', text: line.replace(/^\s*\//, '') };
  if (!trimmed.startsWith('/')) return { kind: 'broadcast', text: line };

  const space = trimmed.search(/\s/);
  const name = (space < 0 ? trimmed : trimmed.slice(0, space)).toLowerCase();
  const rest = space < 0 ? '' : trimmed.slice(space).trim();
  switch (name) {
    case '/connect':
      if (/\s/.test(rest)) return { kind: 'mistake', message: 'usage: /connect H:P' };
      return { kind: 'connect', target: rest === '' ? undefined : rest };
    case '/disconnect':
      return noArgs('disconnect', rest);
    case '/join':
      if (rest === '' || /\s/.test(rest)) return { kind: 'mistake', message: 'usage: /join ROOM' };
      return { kind: 'join-room', room: rest };
    case '/leave':
      if (/\s/.test(rest)) return { kind: 'mistake', message: 'usage: /leave [ROOM]' };
      return { kind: 'leave-room', room: rest === '' ? undefined : rest };
    case '/rooms':
      return rest === '' ? { kind: 'rooms' } : { kind: 'mistake', message: '/rooms takes no arguments' };
    case '/history': {
      if (rest === '') return { kind: 'history', count: HISTORY_LINES };
      const n = /^\d{1,5}$/.test(rest) ? Number(rest) : Number.NaN;
      if (!(n >= 1 && n <= MAX_HISTORY_LINES))
        return { kind: 'mistake', message: `usage: /history [N], N from 1 to ${MAX_HISTORY_LINES}` };
      return { kind: 'history', count: n };
    }
    case '/peers':
    case '/members':
      return noArgs('peers', rest);
    case '/help':
    case '/?':
      return { kind: 'help' };
    case '/exit':
    case '/quit':
      return noArgs('exit', rest);
    case '/dm':
    case '/msg': {
      const m = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (!m) return { kind: 'mistake', message: 'usage: /dm H:P text' };
      return { kind: 'dm', target: m[1]!, text: m[2]! };
    }
    default:
      return {
        kind: 'mistake',
        message: `unknown command '${name}': /help lists the commands (start with // to send a line beginning with /)`,
      };
  }
}

function noArgs(kind: 'disconnect' | 'peers' | 'exit', rest: string): ChatCommand {
  return rest === '' ? { kind } : { kind: 'mistake', message: `/${kind} takes no arguments` };
}

/**
 * `tsp2p chat`: a node with a line-based chat on the terminal (or on pipes).
 *
 * @module
 */

import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type DeliveryFailure,
  type DeliveryReport,
  type Message,
  type Node,
  P2PError,
  type Peer,
} from '../index.js';
import { type NodeFlags, normalizeAddress, type TlsFlags } from './args.js';
import { type ChatCommand, HISTORY_LINES, parseChatLine } from './chat-commands.js';
import {
  addressOf,
  type Colors,
  colors,
  errorMessage,
  joinFailure,
  safeText,
  useColor,
  who,
} from './format.js';
import { CHAT_COMMANDS } from './help.js';
import type { CliIO } from './io.js';
import { Screen } from './screen.js';
import { createNode, Session, secretsOf, startFailure } from './session.js';
import { resolveTarget } from './targets.js';

/** Runs `tsp2p chat` until the node has left; resolves with the exit code. */
export async function runChat(flags: NodeFlags, io: CliIO): Promise<number> {
  const interactive = io.stdin.isTTY === true && io.stdout.isTTY === true;
  const c = colors(useColor(io.stdout, io.env));
  const screen = new Screen(io.stdout, io.stderr);
  const node = createNode(flags, true);
  let self: Peer;
  try {
    self = await node.start();
  } catch (err) {
    io.stderr.write(`tsp2p: ${startFailure(err, flags).message}\n`);
    return 2;
  }
  const chat = new Chat(node, self, screen, c, {
    interactive,
    time: interactive && flags.time,
    exit: () => session.leave('now'),
    tls: flags.tls,
    track: (work) => session.track(work),
  });
  const rl = createInterface({
    input: io.stdin,
    ...(interactive ? { output: io.stdout } : {}),
    terminal: interactive,
    prompt: '> ',
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const session = new Session(node, {
    onTaskError: (err) => chat.error(errorMessage(err)),
    onLeaving: () => {
      screen.detach();
      rl.close();
    },
    // Printed once the input read before has run: what it printed comes first.
    onLeaveStart: () =>
      screen.print(c.dim(interactive ? 'leaving... (Ctrl-C to quit at once)' : 'leaving...')),
    onLeft: (report, error) => chat.left(report, error),
    onForcedExit: () => {
      screen.detach();
      if (interactive) io.stdin.setRawMode?.(false);
    },
  });
  session.handleSignals();
  io.stdout.on('error', () => void session.leave('now'));

  chat.greet(flags);
  // The conversation so far (with a database: what this identity saw in earlier runs).
  session.run(() => chat.resume());
  if (flags.join !== undefined) {
    const entry = flags.join;
    session.run(async () => {
      // A --join that fails ends the chat with a non-zero exit: scripts can tell.
      if (!(await chat.connect(entry))) void session.fail(1);
    });
  }
  rl.on('line', (line) => {
    if (session.leaving) return;
    session.run(() => chat.handle(parseChatLine(line)));
    if (interactive) rl.prompt();
  });
  rl.on('SIGINT', () => session.interrupt());
  rl.on('close', () => void session.leave('after-input'));
  if (interactive) screen.attach(rl);
  return session.finished;
}

/** How a {@link Chat} presents itself. */
interface ChatOptions {
  /** On a terminal: hints for a person, and a prompt. */
  readonly interactive: boolean;
  /** `HH:MM` before each message and member event. */
  readonly time: boolean;
  /** Leaves and ends the chat (`/exit`). */
  readonly exit: () => Promise<void>;
  readonly tls: TlsFlags | undefined;
  /** Runs a send in the background: the chat reads on while it is pending (see Session.track). */
  readonly track: (work: Promise<void>) => void;
}

/** `HH:MM` of `date`, local time. */
export function clockTime(date: Date): string {
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/** The chat's state and its answers to commands and events. */
class Chat {
  readonly #node: Node;
  readonly #self: Peer;
  readonly #screen: Screen;
  readonly #c: Colors;
  readonly #interactive: boolean;
  /** What the chat knows about a member's health, beyond being a member (keyed by id). */
  readonly #notes = new Map<string, string>();
  readonly #exit: () => Promise<void>;
  readonly #tls: TlsFlags | undefined;
  readonly #track: (work: Promise<void>) => void;
  readonly #time: boolean;
  #lastEntry: string | undefined;
  /** The current room: typed lines are published to it (none: broadcast to everyone). */
  #room: string | undefined;

  constructor(node: Node, self: Peer, screen: Screen, c: Colors, options: ChatOptions) {
    this.#node = node;
    this.#tls = options.tls;
    this.#exit = options.exit;
    this.#time = options.time;
    this.#track = options.track;
    this.#self = self;
    this.#screen = screen;
    this.#c = c;
    this.#interactive = options.interactive;
    node.on('message', (m) => this.#message(m));
    // What the node's page (or its HTTP API) sent is part of this conversation too.
    node.on('message:sent', (m) => {
      if (m.origin !== 'web') return;
      const to =
        m.type === 'direct'
          ? ` ${c.magenta(`[dm to ${m.to.map((p) => who(p, c)).join(', ')}]`)}`
          : m.topic !== undefined
            ? ` ${c.cyan(`[${safeText(m.topic)}]`)}`
            : '';
      this.#event(`${c.bold('me (page)')}${to}: ${safeText(m.text)}`);
    });
    node.on('member:join', (p) => {
      this.#notes.delete(p.id);
      this.#event(`${c.green('*')} ${who(p, c)} ${c.green('joined')}`);
    });
    node.on('member:leave', (p) => {
      this.#notes.delete(p.id);
      this.#event(`${c.yellow('*')} ${who(p, c)} ${c.yellow('left')}`);
    });
    node.on('member:suspect', (p) => {
      this.#notes.set(p.id, 'suspect');
      this.#event(`${c.yellow('?')} ${who(p, c)} ${c.yellow('is not answering')}`);
    });
    node.on('member:fail', (p) => {
      this.#notes.delete(p.id);
      this.#event(`${c.red('!')} ${who(p, c)} ${c.red('failed and was removed')}`);
    });
    node.on('member:update', (p) => this.#event(`${c.dim('*')} ${who(p, c)} ${c.dim('updated')}`));
    node.on('peer:refused', (r) => {
      if (r.reason !== 'gop2p-compat-off') return;
      this.#screen.error(
        `${c.red('!')} refused gop2p node ${c.cyan(safeText(`${r.address}:${r.port}`))}: ` +
          'this chat does not run in compat mode; restart it with --gop2p to let gop2p nodes in',
      );
    });
  }

  /**
   * The chat page. From another machine, writes need the token, carried in the fragment; with a
   * network secret the page itself needs it, so it goes in the query, which reaches the node.
   */
  #pageUrl(secret: boolean): string {
    const url = this.#node.url;
    const token = this.#node.webToken;
    const local = /^(127\.|::1$|localhost$)/.test(this.#self.address);
    if (token === undefined || local) return url;
    return secret ? `${url}?token=${token}` : `${url}#token=${token}`;
  }

  /**
   * The command that joins this node. With TLS it names `https://` and this node's TLS files
   * (absolute): it works as printed on this machine; another machine uses its own key and
   * certificate, issued for its own address.
   */
  #joinCommand(): string {
    const tls = this.#tls;
    if (tls === undefined) return `npx tsp2p chat --join ${addressOf(this.#self)}`;
    const files = [
      ...(tls.ca !== undefined ? [`--tls-ca ${shellWord(resolve(tls.ca))}`] : []),
      `--tls-key ${shellWord(resolve(tls.key))}`,
      `--tls-cert ${shellWord(resolve(tls.cert))}`,
      ...(tls.clientAuth ? ['--tls-client-auth'] : []),
    ];
    return `npx tsp2p chat --join https://${addressOf(this.#self)} ${files.join(' ')}`;
  }

  greet(flags: NodeFlags): void {
    const c = this.#c;
    this.#screen.print(`listening on ${this.#tls ? 'https' : 'http'}://${addressOf(this.#self)}`);
    if (flags.advertise !== undefined) {
      const where = `${flags.host ?? '127.0.0.1'}:${flags.port === 0 ? 'a free port' : flags.port}`;
      this.#screen.print(`(that address is advertised with --advertise; this node listens on ${where})`);
    }
    this.#screen.print(`others join with: ${c.bold(this.#joinCommand())}`);
    this.#screen.print(`chat in a browser: ${this.#pageUrl(secretsOf(flags).length > 0)}`);
    if (!this.#interactive) return;
    const loopback = /^(127\.|::1$|localhost$)/.test(this.#self.address);
    const name = this.#self.name ? ` as ${c.bold(safeText(this.#self.name))}` : '';
    this.#screen.print(
      c.dim(`you chat${name}. Type a message and press Enter; /help lists the commands.`) +
        (loopback && flags.host === undefined
          ? c.dim('\n(only this machine can join: start with --host 0.0.0.0 to let your network in)')
          : ''),
    );
  }

  error(text: string): void {
    this.#screen.error(`${this.#c.red('error:')} ${text}`);
  }

  #info(text: string): void {
    this.#screen.print(this.#c.dim(text));
  }

  #event(text: string): void {
    this.#screen.print(this.#time ? `${this.#c.dim(clockTime(new Date()))} ${text}` : text);
  }

  #message(m: Message): void {
    // A late message (caught up after an absence) is history: marked as such, with its time.
    if (m.late === true) {
      this.#screen.print(this.#historyLine(m));
      return;
    }
    this.#event(this.#messageText(m));
  }

  #messageText(m: Message): string {
    const c = this.#c;
    const tag =
      m.type === 'direct'
        ? ` ${c.magenta('[dm]')}`
        : m.topic !== undefined
          ? ` ${c.cyan(`[${safeText(m.topic)}]`)}`
          : '';
    const from = m.from.id === this.#self.id ? c.bold('me') : who(m.from, c);
    return `${from}${tag}: ${safeText(m.text)}`;
  }

  /** A message from the past: `~ HH:MM` (its sender's time), then the line as it prints live. */
  #historyLine(m: Message): string {
    return `${this.#c.dim(`~ ${clockTime(new Date(m.at))}`)} ${this.#messageText(m)}`;
  }

  /**
   * On start: the rooms this node kept from its last run (its database) are joined again, the
   * last one current; then the recent history of the current room (or of the lines to everyone).
   */
  async resume(): Promise<void> {
    this.#room = this.#node.topics().at(-1);
    if (this.#room !== undefined) this.#info(`in room ${this.#room} again (/rooms lists yours)`);
    await this.#history(HISTORY_LINES, true);
  }

  /**
   * Prints the last `n` messages of the current room (none: of the plain broadcasts), each
   * marked as history. `quiet`: nothing when there are none.
   */
  async #history(n: number, quiet = false): Promise<void> {
    const room = this.#room;
    let messages: Message[];
    try {
      messages = await this.#node.history(room !== undefined ? { topic: room, limit: n } : { limit: n });
    } catch (err) {
      return this.error(errorMessage(err));
    }
    const where = room !== undefined ? `room ${room}` : 'the lines to everyone';
    if (messages.length === 0) {
      if (!quiet) this.#info(`no history in ${where}`);
      return;
    }
    this.#info(`history of ${where}, the last ${messages.length}:`);
    this.#screen.print(messages.map((m) => this.#historyLine(m)).join('\n'));
  }

  async handle(cmd: ChatCommand): Promise<void> {
    switch (cmd.kind) {
      case 'empty':
        return;
      case 'broadcast':
        // Sent in the background: the chat reads on, and the send reports when it ends.
        this.#track(this.#broadcast(cmd.text));
        return;
      case 'connect': {
        const target = cmd.target ?? this.#lastEntry;
        if (target === undefined) return this.error('usage: /connect H:P (or connect <port> for 127.0.0.1)');
        await this.connect(target);
        return;
      }
      case 'disconnect':
        return this.#disconnect();
      case 'dm':
        this.#track(this.#dm(cmd.target, cmd.text));
        return;
      case 'peers':
        return this.#peers();
      case 'join-room':
        return this.#joinRoom(cmd.room);
      case 'leave-room':
        return this.#leaveRoom(cmd.room);
      case 'rooms':
        return this.#rooms();
      case 'history':
        return this.#history(cmd.count);
      case 'help':
        this.#screen.print(CHAT_COMMANDS);
        return;
      case 'exit':
        await this.#exit();
        return;
      case 'mistake':
        return this.error(cmd.message);
    }
  }

  /** Joins through `target`; resolves with whether it worked (the error is printed). */
  async connect(target: string): Promise<boolean> {
    let address: string;
    try {
      address = normalizeAddress(target);
    } catch (err) {
      this.error(errorMessage(err));
      return false;
    }
    this.#lastEntry = address;
    try {
      const report = await this.#node.connect(address);
      const n = report.members.length;
      this.#info(`connected through ${addressOf(report.entry)}: ${n} member${n === 1 ? '' : 's'}`);
      this.#failures(report.failed, 'did not answer');
      return true;
    } catch (err) {
      this.error(joinFailure(err, address));
      return false;
    }
  }

  /** Subscribes to `room` and makes it the current room: typed lines go there. */
  async #joinRoom(room: string): Promise<void> {
    try {
      await this.#node.subscribe(room);
    } catch (err) {
      return this.error(errorMessage(err));
    }
    this.#room = room;
    const n = this.#node.subscribers(room).length;
    this.#info(
      `in room ${room} (${n} other${n === 1 ? '' : 's'} here): your lines go to it; /leave leaves it`,
    );
    await this.#history(HISTORY_LINES, true);
  }

  /** Unsubscribes from `room` (default: the current one). */
  async #leaveRoom(room: string | undefined): Promise<void> {
    const which = room ?? this.#room;
    if (which === undefined) return this.error('not in a room: /join ROOM');
    if (!this.#node.topics().includes(which)) return this.error(`not in room ${which} (/rooms lists yours)`);
    try {
      await this.#node.unsubscribe(which);
    } catch (err) {
      return this.error(errorMessage(err));
    }
    if (this.#room === which) this.#room = this.#node.topics().at(-1);
    this.#info(
      `left room ${which}; ${this.#room === undefined ? 'your lines go to everyone' : `your lines go to ${this.#room}`}`,
    );
  }

  /** The rooms known (this node's and every member's), with who is in each. */
  #rooms(): void {
    const c = this.#c;
    const rooms = new Map<string, string[]>();
    for (const t of this.#node.topics()) rooms.set(t, ['you']);
    for (const p of this.#node.members()) {
      for (const t of p.topics ?? []) rooms.set(t, [...(rooms.get(t) ?? []), who(p, c)]);
    }
    if (rooms.size === 0) {
      this.#screen.print('no rooms yet: /join ROOM makes one');
      return;
    }
    const lines = [...rooms.keys()].sort().map((t) => {
      const mark = t === this.#room ? '*' : ' ';
      return `${mark} ${safeText(t)}: ${rooms.get(t)!.join(', ')}`;
    });
    this.#screen.print(lines.join('\n'));
  }

  async #broadcast(text: string): Promise<void> {
    if (!this.#node.isConnected) return this.#alone();
    try {
      const room = this.#room;
      if (room !== undefined) {
        this.#delivered(await this.#node.publish(room, text));
        return;
      }
      this.#delivered(await this.#node.broadcast(text));
    } catch (err) {
      this.error(this.#explain(err));
    }
  }

  async #dm(target: string, text: string): Promise<void> {
    if (!this.#node.isConnected) return this.#alone();
    const to = resolveTarget(target, this.#node.members());
    if (typeof to !== 'string') return this.error(`${to.message} (see /peers)`);
    try {
      this.#delivered(await this.#node.send(to, text));
    } catch (err) {
      this.error(this.#explain(err));
    }
  }

  async #disconnect(): Promise<void> {
    if (!this.#node.isConnected) return this.error('not connected');
    const report = await this.#node.disconnect();
    this.#notes.clear();
    const n = report.notified.length;
    this.#info(`left the network (told ${n} member${n === 1 ? '' : 's'}); /connect H:P joins again`);
    this.#failures(report.failed, 'was not told');
  }

  #peers(): void {
    const c = this.#c;
    const members = this.#node.members();
    const lines = [`you: ${who(this.#self, c)}`];
    if (members.length === 0) {
      lines.push(`no members yet: /connect H:P, or have others run: ${this.#joinCommand()}`);
    } else {
      lines.push(`${members.length} member${members.length === 1 ? '' : 's'}:`);
      for (const p of members) {
        const note = this.#notes.get(p.id);
        const tags = Object.entries(p.tags ?? {}).map(([k, v]) => `${k}=${v}`);
        const extra = [
          ...(tags.length > 0 ? [`tags ${safeText(tags.join(','))}`] : []),
          ...(p.topics !== undefined ? [`rooms ${safeText(p.topics.join(','))}`] : []),
        ];
        lines.push(
          `  ${who(p, c)}  ${note ? c.yellow(note) : c.green('alive')}${extra.length > 0 ? `  ${c.dim(extra.join('  '))}` : ''}`,
        );
      }
    }
    this.#screen.print(lines.join('\n'));
  }

  left(report: { notified: Peer[]; failed: DeliveryFailure[] } | undefined, error: unknown): void {
    if (error !== undefined) {
      this.error(`leaving failed: ${errorMessage(error)}`);
      return;
    }
    if (report === undefined || report.notified.length + report.failed.length === 0) {
      this.#info('bye');
      return;
    }
    const n = report.notified.length;
    this.#info(`left the network (told ${n} member${n === 1 ? '' : 's'}), bye`);
    this.#failures(report.failed, 'was not told');
  }

  #delivered(report: DeliveryReport): void {
    for (const p of report.delivered) this.#notes.delete(p.id);
    for (const f of report.failed) this.#notes.set(f.peer.id, 'unreachable (last message not delivered)');
    this.#failures(report.failed, 'did not get it');
  }

  #failures(failed: readonly DeliveryFailure[], what: string): void {
    for (const f of failed) {
      this.#screen.error(`${this.#c.red('!')} ${who(f.peer, this.#c)} ${what}: ${errorMessage(f.error)}`);
    }
  }

  /**
   * A line typed while not in a network. The first node of a new network is alone until
   * someone joins it: say so, and how, rather than an error.
   */
  #alone(): void {
    if (this.#lastEntry !== undefined) {
      this.error(this.#notConnected());
      return;
    }
    this.#info(`nobody is here yet, so nothing was sent. Others join with: ${this.#joinCommand()}`);
  }

  #notConnected(): string {
    return `not connected: /connect H:P, or have others run: ${this.#joinCommand()}`;
  }

  #explain(err: unknown): string {
    if (err instanceof P2PError) {
      if (err.code === 'ERR_NOT_CONNECTED') return this.#notConnected();
      if (err.code === 'ERR_UNKNOWN_PEER') return `${errorMessage(err)} (/peers lists the members)`;
    }
    return errorMessage(err);
  }
}

/** A path as one shell word: as it is when it is plain, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * The usage texts, and the version read from package.json.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import type { RunCommand } from './args.js';

/** The package version. Both src/cli and dist/cli sit two levels below package.json. */
export function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

const FLAGS = `Options:
  --host H       the interface to listen on (default 127.0.0.1, this machine only;
                 use 0.0.0.0 to let other machines on your network join)
  --port P       the port to listen on (default 0: any free port)
  --advertise H:P  the address other nodes reach this one at, when it is not where it
                 listens: behind NAT, a published container port (docker -p), a proxy.
                 Members always show a node at the address it advertises
  --join H:P     join the network through the node at H:P (a bare port means 127.0.0.1);
                 if the join fails, the command exits with code 1
  --name NAME    a display name shown with your messages (default: <user>-<id prefix>)
  --tags K=V,... the node's tags (role=db,zone=eu), shown with it to every member; at most
                 512 bytes in all
  --gop2p        compat mode: also talk to gop2p (Go) nodes
  --secret S     the network secret (16+ characters): only nodes that hold it can join,
                 read or send. Repeat it or separate with commas to rotate: all are
                 accepted, the first is used to send. Also read from $TSP2P_SECRET, which
                 other users cannot see in the process list. gop2p nodes cannot hold one.
  --identity F   the node's key file (created, mode 0600, if missing; its folder must
                 exist). Default: the key follows the name (name-NAME.pem), or the port
                 when there is no name (port-P.pem), in $XDG_DATA_HOME/tsp2p
                 (~/.local/share/tsp2p), so the node keeps its id across runs; with
                 neither, a new key each run. One running node per name: a second one
                 with the same name is refused
                 A key file that others can read is refused: chmod 600 it
  --data DIR     the node's database (history, members, delivery state), created 0700
                 if missing. chat: by default one per key, beside it (name-NAME.data,
                 port-P.data), so history and members survive a restart; with a new key
                 each run, none (memory). node: none unless given
  --allow-readable-identity
                 accept a key file that others can read (containers that mount secrets
                 world-readable; see SECURITY.md)
  --tls-key F, --tls-cert F
                 HTTPS: this node's private key and certificate (PEM files, both or
                 neither). The certificate must name the address others reach it at
                 (subjectAltName). Every node of a network uses HTTPS, or none does
  --tls-ca F     the CA (PEM) that peers' certificates are checked against
                 (default: the system's CAs)
  --tls-client-auth
                 mutual TLS: refuse peers without a certificate signed by --tls-ca
  -h, --help     show this help`;

/** The chat's commands, as `/help` prints them. */
export const CHAT_COMMANDS = `Type a line and press Enter to send it to every member (or to the room you
joined last). Commands:
  /connect H:P       join a network through H:P (gop2p style: connect <port>)
  /disconnect        leave the network; you can /connect again
  /dm H:P text       send text to one member only (H:P may also be a member's name)
  /peers             list the members: address, name, state, tags and rooms
  /join ROOM         join a room: your lines go to it, and you get its lines; prints
                     its recent history
  /leave [ROOM]      leave a room (default: the current one)
  /rooms             list the rooms and who is in each
  /history [N]       print the last N messages (default 20) of the current room, or of
                     the lines to everyone when in no room; history lines start with ~
  /help              show the commands
  /exit              leave gracefully and quit (also: exit, Ctrl-D, Ctrl-C)`;

/** The usage of `tsp2p`, or of one of its commands. */
export function usage(topic: RunCommand | undefined, version: string): string {
  if (topic === 'chat') {
    return `Usage: tsp2p chat [options]

Starts a node and chats in the terminal. It prints the command others run to join you.
What the node's browser page sends prints here too, as "me (page)".

${FLAGS}
  --no-time      no HH:MM before each message (shown on a terminal by default)

${CHAT_COMMANDS}

With piped input it reads one line at a time, prints one line per event, and leaves
gracefully at the end of the input. The first Ctrl-C leaves gracefully; a second quits at once.

Example (two terminals):
  npx tsp2p chat --port 6001 --name ada
  npx tsp2p chat --join 127.0.0.1:6001 --name bob
`;
  }
  if (topic === 'node') {
    return `Usage: tsp2p node [options]

Starts a node for scripts and services: no prompt, one JSON object per line on stdout.

${FLAGS}
  --no-input     read no input: run until SIGTERM or SIGINT, then leave gracefully
                 (for systemd, Docker and other service managers)

Output, one object per line:
  {"event":"listening","address":"127.0.0.1","port":6001,"id":"...","name":"..."}
  {"event":"connected","entry":{...},"members":[...],"failed":[...]}
  {"event":"message","id":"...","type":"broadcast","from":{"id","address","port","name"},"text":"hi",
   "at":1767225600000}  ("topic" for a room's; "late":true for history caught up after an absence)
  {"event":"member:join","id":"...","address":"...","port":6002,"name":"..."}
    (also member:leave, member:suspect, member:fail, member:update)
  {"event":"sent","id":"...","type":"broadcast","delivered":[...],"failed":[...]}
    (with "origin":"web" and "text": what the node's page or HTTP API sent)
  {"event":"error","code":"ERR_UNKNOWN_PEER","message":"..."}  (the node keeps running)
  {"event":"left","notified":[...],"failed":[...]}  (at the end)

Input, one per line:
  any text                               broadcast to every member
  {"text":"..."}                         a broadcast of exactly this text
  {"to":"H:P","text":"..."}              a direct message; "to" may be a member's name,
                                         or a list (one bad entry: nothing is sent)
  {"topic":...}, {"subscribe":...}, {"unsubscribe":...}
                                         topics: an error until they exist
A line that starts with '{' and is none of these is an error event: it is never sent.
Empty messages are not sent.

The end of the input leaves gracefully and exits 0; a failed --join exits 1. To keep a
node running with no input, use --no-input.
`;
  }
  return `tsp2p ${version}: peer-to-peer messaging over HTTP, wire-compatible with gop2p

Usage:
  tsp2p chat [options]   chat in the terminal
  tsp2p node [options]   a node for scripts: JSON lines out, text lines in
  tsp2p help [command]   show help for a command
  tsp2p --version        print the version

${FLAGS}

Quick start, in two terminals:
  npx tsp2p chat --port 6001
  npx tsp2p chat --join 127.0.0.1:6001

Run 'tsp2p help chat' for the chat commands.
`;
}

/**
 * The browser chat page: HTML, a stylesheet and a script, kept as strings so that `tsc` ships
 * them with the rest (no build step of their own). The script is plain ES2020, renders every
 * text with `textContent` (never as HTML), and talks only to the node that served it:
 * `GET members`, `GET events` (Server-Sent Events), `POST api/broadcast`, `POST api/send`,
 * `POST api/publish`, `POST api/subscribe` and `POST api/unsubscribe`.
 *
 * Rooms (topics): the side panel lists every room this node or a member is in, with who is in
 * each. Choosing a room this node is in makes it the current room: typed lines are published to
 * it, and the log shows that room's lines only (and the member events). "everyone" is no room:
 * typed lines are broadcast and the log shows the whole conversation. A line from a room shows
 * its name. A room is joined with the box under the list (or by choosing one this node is not
 * in), and left with its "leave" button.
 *
 * It shows the node's whole conversation: the feed's `hello` carries the recent messages, so a
 * page that opens or reloads starts from them, and what the node sends from anywhere (the
 * terminal, another page, the API) arrives as `sent`.
 *
 * The layout is responsive: on a narrow screen (a phone) the member list folds into a line above
 * the conversation that opens on a tap, long words wrap only when they must, and the message
 * box and its button always fit.
 *
 * A page opened from another machine needs the token printed at start: open it as
 * `http://host:port/#token=...` (the fragment never leaves the browser), or, when the node has a
 * network secret and so serves the page itself only with the token, `http://host:port/?token=...`.
 *
 * @module
 */

/** The Content-Security-Policy of the page: its own script and stylesheet, and nothing else. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** `GET /` for a browser. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tsp2p chat</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css">
</head>
<body>
<header>
  <h1>tsp2p</h1>
  <span id="self" class="self"></span>
  <span id="feed" class="feed" data-state="connecting">connecting…</span>
</header>
<main>
  <section class="chat">
    <ol id="log" aria-live="polite"></ol>
    <form id="compose" autocomplete="off">
      <label for="to" class="hidden">to</label>
      <span id="current" class="current"></span>
      <select id="to"><option value="">everyone</option></select>
      <input id="text" name="text" placeholder="Type a message" aria-label="message">
      <button id="send" type="submit">Send</button>
    </form>
  </section>
  <aside>
    <details id="rooms-panel" open>
      <summary><h2>Rooms</h2></summary>
      <ul id="rooms"></ul>
      <form id="join" autocomplete="off">
        <input id="room" name="room" placeholder="room name" aria-label="room to join" maxlength="64">
        <button id="join-room" type="submit">Join</button>
      </form>
    </details>
    <details id="roster" open>
      <summary><h2>Members <span id="count"></span></h2></summary>
      <ul id="members"></ul>
    </details>
  </aside>
</main>
<script src="app.js"></script>
</body>
</html>
`;

/** `GET /app.css`. */
export const PAGE_CSS = `:root { color-scheme: light dark; --muted: #777; --accent: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; display: flex; flex-direction: column; height: 100vh; height: 100dvh; }
header { display: flex; gap: 1em; align-items: baseline; padding: .5em 1em; border-bottom: 1px solid #8884; min-width: 0; }
h1 { font-size: 1.1em; margin: 0; }
h2 { font-size: 1em; margin: 0 0 .5em; display: inline; }
.self { color: var(--muted); font-family: monospace; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.feed { margin-left: auto; font-size: .85em; color: var(--muted); white-space: nowrap; }
.feed[data-state="live"] { color: #2f855a; }
.feed[data-state="down"] { color: #c53030; }
main { flex: 1; display: flex; min-height: 0; }
.chat { flex: 1; display: flex; flex-direction: column; min-width: 0; }
#log { flex: 1; overflow-y: auto; margin: 0; padding: .5em 1em; list-style: none; }
#log li { padding: .1em 0; overflow-wrap: break-word; word-break: normal; hyphens: none; }
#log .time { color: var(--muted); font-size: .8em; margin-right: .5em; }
#log .who { font-weight: 600; margin-right: .5em; }
#log li.direct .who::after { content: " (direct)"; font-weight: normal; color: var(--accent); }
#log li.sent .who { color: var(--accent); }
#log li.late .time::before { content: "~ "; }
#log li.member, #log li.info { color: var(--muted); font-style: italic; }
#log .room, #rooms .room-name, .current { color: var(--accent); font-weight: 600; }
#log .room { margin-right: .5em; }
.current { align-self: center; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 8em; }
#rooms { list-style: none; margin: 0 0 .5em; padding: 0; }
#rooms li { padding: .3em 0; border-bottom: 1px solid #8882; cursor: pointer; }
#rooms li[data-current="true"] { background: #2b6cb022; }
#rooms li[data-joined="false"] .room-name { color: var(--muted); font-weight: normal; }
#rooms .who { display: block; font-size: .85em; color: var(--muted); overflow-wrap: break-word; }
#rooms button { font-size: .8em; margin-left: .3em; }
#join { display: flex; gap: .3em; margin-bottom: 1em; }
#room { flex: 1 1 6em; min-width: 0; font: inherit; }
#rooms-panel > summary { cursor: pointer; list-style: none; }
#rooms-panel > summary::-webkit-details-marker { display: none; }
#log li.error { color: #c53030; }
#compose { display: flex; gap: .5em; padding: .5em 1em; border-top: 1px solid #8884; min-width: 0; }
#to { max-width: 12em; min-width: 0; flex: 0 1 auto; font: inherit; }
#text { flex: 1 1 6em; min-width: 0; font: inherit; padding: .3em .5em; }
#send { flex: 0 0 auto; font: inherit; }
aside { width: 20em; flex: 0 0 auto; border-left: 1px solid #8884; padding: .5em 1em; overflow-y: auto; }
#roster > summary { cursor: pointer; list-style: none; }
#roster > summary::-webkit-details-marker { display: none; }
#roster[open] > summary { margin-bottom: .5em; }
#roster > summary::before { content: "▸ "; color: var(--muted); }
#roster[open] > summary::before { content: "▾ "; }
#members .name { overflow-wrap: break-word; }
#members { list-style: none; margin: 0; padding: 0; }
#members li { padding: .3em 0; border-bottom: 1px solid #8882; }
#members .addr { display: block; font-family: monospace; font-size: .85em; color: var(--muted); }
#members .state { font-size: .75em; padding: 0 .4em; border-radius: .6em; margin-left: .3em; background: #8883; }
#members li[data-state="alive"] .state { background: #c6f6d5; color: #22543d; }
#members li[data-state="suspect"] .state { background: #fefcbf; color: #744210; }
#members li[data-state="dead"], #members li[data-state="left"] { opacity: .6; }
#members button { font-size: .8em; margin-left: .3em; }
.hidden { position: absolute; left: -10000px; }
/* A phone: one column; the member list is a line above the conversation, open on a tap. */
@media (max-width: 40em) {
  header { gap: .5em; padding: .4em .6em; }
  main { flex-direction: column; }
  aside { order: -1; width: auto; max-height: 40vh; border-left: 0; border-bottom: 1px solid #8884; padding: .4em .6em; }
  #log { padding: .4em .6em; }
  #compose { padding: .4em .6em; gap: .3em; }
  #to { max-width: 6.5em; }
}
`;

/** `GET /app.js`. */
export const PAGE_JS = `(function () {
  'use strict';
  var token = new URLSearchParams(location.hash.slice(1)).get('token') ||
    new URLSearchParams(location.search).get('token') || '';
  var $ = function (id) { return document.getElementById(id); };
  var members = [];
  var self = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function addr(p) { return p.address.indexOf(':') >= 0 ? '[' + p.address + ']:' + p.port : p.address + ':' + p.port; }
  function who(p) { return p.name ? p.name + ' (' + addr(p) + ')' : addr(p); }
  var narrow = window.matchMedia('(max-width: 40em)');
  // The room typed lines go to ('' = everyone), and this node's own rooms.
  var current = '';
  var mine = [];
  function fold() { $('roster').open = !narrow.matches; $('rooms-panel').open = !narrow.matches; }
  // In a room, the log shows that room's messages only; member and info lines always.
  function visible(li) {
    return !current || !li.dataset.conv || li.dataset.topic === current;
  }
  function line(kind, from, text, ts, topic) {
    var log = $('log');
    var stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    var li = el('li', kind);
    li.appendChild(el('span', 'time', new Date(ts || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    if (topic) { li.dataset.topic = topic; li.appendChild(el('span', 'room', '#' + topic)); }
    if (from) li.appendChild(el('span', 'who', from));
    li.appendChild(el('span', 'text', text));
    if (/^(message|sent)/.test(kind)) li.dataset.conv = '1';
    li.hidden = !visible(li);
    log.appendChild(li);
    while (log.children.length > 1000) log.removeChild(log.firstChild);
    if (stick) log.scrollTop = log.scrollHeight;
  }
  // Ids shown since the last hello: an event that happened while the history was read may be in both.
  var shown = Object.create(null);
  function show(d) {
    if (d.id) {
      if (shown[d.id]) return;
      shown[d.id] = true;
    }
    if (d.kind === 'message') {
      // A late message (caught up after an absence) is history, marked as the terminal marks it.
      var kind = (d.type === 'direct' ? 'message direct' : 'message') + (d.late ? ' late' : '');
      line(kind, who(d.from), d.text, d.ts, d.topic);
      return;
    }
    var to = d.to ? ' → ' + d.to.map(who).join(', ') : '';
    var failed = d.failed > 0 ? ' (' + d.failed + ' failed)' : '';
    line(d.type === 'direct' ? 'sent direct' : 'sent', 'me' + to, d.text + failed, d.ts, d.topic);
  }
  function setRoom(room) {
    current = room;
    var log = $('log');
    Array.prototype.forEach.call(log.children, function (li) { li.hidden = !visible(li); });
    log.scrollTop = log.scrollHeight;
    $('current').textContent = current ? '#' + current : '';
    $('text').placeholder = current ? 'Message #' + current : 'Type a message';
    $('to').options[0].textContent = current ? 'room #' + current : 'everyone';
    renderRooms();
  }
  function renderRooms() {
    var rooms = {};
    mine.forEach(function (t) { rooms[t] = ['you']; });
    members.forEach(function (m) {
      if (m.state !== 'alive' && m.state !== 'suspect') return;
      (m.topics || []).forEach(function (t) { (rooms[t] = rooms[t] || []).push(m.name || addr(m)); });
    });
    var ul = $('rooms');
    ul.textContent = '';
    var all = el('li');
    all.dataset.room = '';
    all.dataset.current = String(current === '');
    all.dataset.joined = 'true';
    all.appendChild(el('span', 'room-name', 'everyone'));
    all.appendChild(el('span', 'who', 'every member, no room'));
    all.addEventListener('click', function () { setRoom(''); });
    ul.appendChild(all);
    Object.keys(rooms).sort().forEach(function (t) {
      var li = el('li');
      var joined = mine.indexOf(t) >= 0;
      li.dataset.room = t;
      li.dataset.current = String(current === t);
      li.dataset.joined = String(joined);
      li.appendChild(el('span', 'room-name', '#' + t));
      if (joined) {
        var b = el('button', 'leave', 'leave');
        b.type = 'button';
        b.title = 'leave #' + t;
        b.addEventListener('click', function (ev) { ev.stopPropagation(); room('unsubscribe', t); });
        li.appendChild(b);
      }
      li.appendChild(el('span', 'who', rooms[t].join(', ')));
      li.addEventListener('click', function () { if (joined) setRoom(t); else room('subscribe', t); });
      ul.appendChild(li);
    });
  }
  // Joins (and switches to) or leaves a room through the node.
  function room(action, t) {
    return fetch('api/' + action, { method: 'POST', headers: headers(), body: JSON.stringify({ topic: t }) })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (e) { line('error', 'error', e.trim() || String(r.status)); });
        return r.json().then(function (j) {
          mine = j.topics || [];
          if (action === 'subscribe') setRoom(t);
          else if (current === t) setRoom('');
          else renderRooms();
          refreshMembers();
        });
      })
      .catch(function (err) { line('error', 'error', String(err)); });
  }
  function headers() {
    var h = { 'content-type': 'application/json' };
    if (token) h.authorization = 'Bearer ' + token;
    return h;
  }
  function renderMembers() {
    var ul = $('members');
    ul.textContent = '';
    var live = 0;
    members.forEach(function (m) {
      var li = el('li');
      li.dataset.id = m.id;
      li.dataset.state = m.state;
      li.appendChild(el('span', 'name', m.name || addr(m)));
      li.appendChild(el('span', 'state', m.state));
      if (m.state === 'alive' || m.state === 'suspect') {
        live++;
        var b = el('button', 'dm', 'DM');
        b.type = 'button';
        b.title = 'send a direct message';
        b.addEventListener('click', function () { $('to').value = m.id; $('text').focus(); });
        li.appendChild(b);
      }
      li.appendChild(el('span', 'addr', addr(m)));
      var about = [];
      if (m.topics && m.topics.length) about.push('rooms ' + m.topics.map(function (t) { return '#' + t; }).join(' '));
      if (m.tags) Object.keys(m.tags).forEach(function (k) { about.push(k + '=' + m.tags[k]); });
      if (about.length) li.appendChild(el('span', 'addr about', about.join(' · ')));
      ul.appendChild(li);
    });
    $('count').textContent = '(' + live + ')';
    var to = $('to');
    var chosen = to.value;
    while (to.options.length > 1) to.remove(1);
    members.forEach(function (m) {
      if (m.state !== 'alive' && m.state !== 'suspect') return;
      var o = el('option', '', 'to ' + who(m));
      o.value = m.id;
      to.appendChild(o);
    });
    to.value = chosen;
    if (to.value !== chosen) to.value = '';
  }
  var refreshing = null;
  function refreshMembers() {
    if (refreshing) return refreshing;
    var auth = token ? { authorization: 'Bearer ' + token } : {};
    refreshing = fetch('members', { cache: 'no-store', headers: auth })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        members = j.members || [];
        mine = (j.self && j.self.topics) || [];
        // A room left elsewhere (the terminal): back to everyone.
        if (current && mine.indexOf(current) < 0) setRoom('');
        renderMembers();
        renderRooms();
      })
      .catch(function () {})
      .then(function () { refreshing = null; });
    return refreshing;
  }
  function feed() {
    var es = new EventSource('events' + (token ? '?token=' + encodeURIComponent(token) : ''));
    var state = $('feed');
    es.onopen = function () { state.dataset.state = 'live'; state.textContent = 'live'; };
    es.onerror = function () { state.dataset.state = 'down'; state.textContent = 'reconnecting…'; };
    es.addEventListener('hello', function (e) {
      var d = JSON.parse(e.data);
      self = d.self;
      $('self').textContent = who(self) + (d.connected ? '' : ' · not connected');
      // The conversation so far, from the node: the same after a reload or a reconnect.
      $('log').textContent = '';
      shown = Object.create(null);
      (d.recent || []).forEach(show);
      refreshMembers();
    });
    es.addEventListener('message', function (e) { show(JSON.parse(e.data)); });
    es.addEventListener('sent', function (e) { show(JSON.parse(e.data)); });
    es.addEventListener('member', function (e) {
      var d = JSON.parse(e.data);
      var words = { join: 'joined', leave: 'left', suspect: 'is suspected of failing', fail: 'failed', update: 'changed' };
      line('member ' + d.event, '', who(d.peer) + ' ' + (words[d.event] || d.event));
      refreshMembers();
      if (self) $('self').textContent = who(self);
    });
  }
  $('compose').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var input = $('text');
    var text = input.value;
    if (!text.trim()) return;
    var to = $('to').value;
    // A direct message if a member is chosen; else to the current room, or to everyone.
    var body = to ? { to: to, text: text } : current ? { topic: current, text: text } : { text: text };
    var path = to ? 'api/send' : current ? 'api/publish' : 'api/broadcast';
    $('send').disabled = true;
    fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify(body) })
      .then(function (r) {
        if (r.ok) { input.value = ''; return; }
        return r.text().then(function (t) { line('error', 'error', t.trim() || String(r.status)); });
      })
      .catch(function (err) { line('error', 'error', String(err)); })
      .then(function () { $('send').disabled = false; input.focus(); });
  });
  $('join').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = $('room').value.trim().replace(/^#/, '');
    if (!t) return;
    room('subscribe', t).then(function () { $('room').value = ''; });
  });
  fold();
  setRoom('');
  if (narrow.addEventListener) narrow.addEventListener('change', fold);
  feed();
  refreshMembers();
  setInterval(refreshMembers, 5000);
})();
`;

/**
 * Real `tsp2p node` processes: one JSON object per line on stdout for every event, stdin
 * lines as broadcasts or `{"to","text"}` direct messages, errors that do not stop the node,
 * and a graceful leave at the end of input or on a signal.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CliEvent, events, startListening, waitForEvent } from '../helpers/cli-process.js';
import { postApi } from '../helpers/web-client.js';

function at(address: string): (ev: CliEvent) => boolean {
  return (ev) => `${ev.address}:${ev.port}` === address;
}

function from(address: string, text: string, type: 'broadcast' | 'direct'): (ev: CliEvent) => boolean {
  return (ev) => {
    const f = ev.from as { address: string; port: number };
    return `${f.address}:${f.port}` === address && ev.text === text && ev.type === type;
  };
}

describe('tsp2p node', () => {
  test('prints every event as one JSON object per line and takes lines and JSON commands', async (t) => {
    const { p: one, address: a } = await startListening(t, 'one', ['node', '--name', 'one']);
    const listening = events(one)[0]!;
    assert.equal(listening.event, 'listening');
    assert.equal(listening.address, '127.0.0.1');
    assert.equal(typeof listening.port, 'number');
    assert.match(listening.id as string, /^[0-9a-f]{32}$/);
    assert.equal(listening.name, 'one');

    const { p: two, address: b } = await startListening(t, 'two', ['node', '--name', 'two', '--join', a]);
    const connected = await waitForEvent(two, 'connected');
    assert.deepEqual(
      (connected.members as { port: number }[]).map((m) => m.port),
      [Number(a.split(':')[1])],
    );
    const joined = await waitForEvent(one, 'member:join', at(b));
    assert.equal(joined.name, 'two');
    assert.equal(joined.id, events(two)[0]!.id);

    const { p: three, address: c } = await startListening(t, 'three', ['node', '--join', a]);
    await waitForEvent(two, 'member:join', at(c));
    await waitForEvent(three, 'connected');

    // A plain line is a broadcast; `sent` reports who got it.
    two.send('hello {not json');
    await waitForEvent(one, 'message', from(b, 'hello {not json', 'broadcast'));
    await waitForEvent(three, 'message', from(b, 'hello {not json', 'broadcast'));
    const sent = await waitForEvent(two, 'sent', (ev) => ev.type === 'broadcast');
    assert.equal((sent.delivered as unknown[]).length, 2);
    assert.deepEqual(sent.failed, []);

    // A JSON object with "to" is a direct message; "text" alone is a broadcast of that text.
    two.send(JSON.stringify({ to: a, text: 'psst' }));
    await waitForEvent(one, 'message', from(b, 'psst', 'direct'));
    two.send(JSON.stringify({ text: '{"looks":"like json"}' }));
    await waitForEvent(three, 'message', from(b, '{"looks":"like json"}', 'broadcast'));
    assert.ok(!events(three).some((ev) => ev.text === 'psst'), 'the direct message reached only its target');

    // Errors are events; the node keeps running.
    let mark = two.mark();
    two.send(JSON.stringify({ to: '127.0.0.1:1', text: 'nobody' }));
    const unknown = await waitForEvent(two, 'error', () => true, mark);
    assert.equal(unknown.code, 'ERR_UNKNOWN_PEER');
    mark = two.mark();
    two.send(JSON.stringify({ to: 'nowhere', text: 'x' }));
    assert.equal((await waitForEvent(two, 'error', () => true, mark)).code, 'ERR_INVALID_ADDRESS');
    mark = two.mark();
    two.send(JSON.stringify({ to: a }));
    assert.equal((await waitForEvent(two, 'error', () => true, mark)).code, 'ERR_INVALID_INPUT');
    two.send('still running');
    await waitForEvent(one, 'message', from(b, 'still running', 'broadcast'));

    // Every stdout line is a JSON object with an event name.
    for (const p of [one, two, three]) {
      for (const line of p.lines.stdout) {
        const ev = JSON.parse(line) as CliEvent;
        assert.equal(typeof ev.event, 'string', line);
      }
    }

    // End of input: two leaves; the others see a leave, not a failure; two exits with 0.
    two.end();
    await waitForEvent(one, 'member:leave', at(b));
    await waitForEvent(three, 'member:leave', at(b));
    const left = await waitForEvent(two, 'left');
    assert.equal((left.notified as unknown[]).length, 2);
    assert.equal(await two.waitExit(), 0);
    assert.ok(!events(one).some((ev) => ev.event === 'member:fail'), one.dump());
  });

  // Issue 17: a failed --join exited 0 (scripts could not tell), with a message that repeated
  // itself; it now exits 1 with one clause.
  test('a node that cannot join says why in one clause and exits 1', async (t) => {
    const { p: lone } = await startListening(t, 'lone', ['node', '--join', '127.0.0.1:1']);
    const err = await waitForEvent(lone, 'error');
    assert.equal(err.code, 'ERR_CONNECT_FAILED');
    assert.equal(
      err.message,
      'cannot join through 127.0.0.1:1: nothing is listening there (connection refused)',
    );
    assert.equal(await lone.waitExit(), 1);
  });

  test('the first node of a network: a line is not sent, and the error says nobody is here yet', async (t) => {
    const { p: first, address } = await startListening(t, 'first', ['node']);
    first.send('anyone?');
    const notConnected = await waitForEvent(first, 'error', (ev) => ev.code === 'ERR_NOT_CONNECTED');
    assert.match(notConnected.message as string, /nobody is here yet/);
    assert.ok((notConnected.message as string).includes(`--join ${address}`), notConnected.message as string);
    first.end();
    assert.equal(await first.waitExit(), 0);
  });

  test('--no-input: reads no stdin, runs until SIGTERM, then leaves gracefully', async (t) => {
    const { p: hub, address: h } = await startListening(t, 'hub', ['node', '--name', 'hub']);
    const { p: svc, address: s } = await startListening(t, 'svc', ['node', '--no-input', '--join', h]);
    await waitForEvent(svc, 'connected');
    await waitForEvent(hub, 'member:join', at(s));
    // The end of its stdin does not end it: it still gets what the hub sends afterwards.
    svc.end();
    hub.send('are you still there?');
    await waitForEvent(svc, 'message', from(h, 'are you still there?', 'broadcast'));
    assert.ok(!events(svc).some((ev) => ev.event === 'left'), svc.dump());
    // What its API (or page) sends is reported too, marked as coming from the web.
    const res = await postApi(Number(s.split(':')[1]), '/api/broadcast', { text: 'through the api' });
    assert.equal(res.status, 200, res.body);
    await waitForEvent(hub, 'message', from(s, 'through the api', 'broadcast'));
    await waitForEvent(svc, 'sent', (ev) => ev.origin === 'web' && ev.text === 'through the api');
    svc.kill('SIGTERM');
    await waitForEvent(hub, 'member:leave', at(s));
    assert.equal(await svc.waitExit(), 0, svc.dump());
    assert.ok(
      events(svc).some((ev) => ev.event === 'left'),
      svc.dump(),
    );
  });

  test('SIGTERM and SIGINT leave gracefully and exit with 0', async (t) => {
    const { p: hub, address: h } = await startListening(t, 'hub', ['node']);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const { p, address } = await startListening(t, signal, ['node', '--join', h]);
      await waitForEvent(hub, 'member:join', at(address));
      p.kill(signal);
      await waitForEvent(hub, 'member:leave', at(address));
      assert.equal(await p.waitExit(), 0, p.dump());
      assert.ok(
        events(p).some((ev) => ev.event === 'left'),
        p.dump(),
      );
    }
  });
});

/**
 * Real `tsp2p chat` processes driven through pipes: three join, talk, list each other,
 * disconnect and reconnect; one is killed and the others carry on; /exit, `exit`, end of
 * input and signals leave cleanly (the others see a leave, not a failure).
 */

import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { type CliProcess, startListening } from '../helpers/cli-process.js';

/** A line announcing an event about the peer at `address`, such as `<address> (name) left`. */
function about(address: string, what: string): RegExp {
  return new RegExp(`^\\* ${address.replace(/\./g, '\\.')} \\(\\S+\\) ${what}$`);
}

/** The line a received message prints as: `<address> (name)[ [dm]]: text`. */
function said(address: string, name: string, text: string, dm = false): string {
  return `${address} (${name})${dm ? ' [dm]' : ''}: ${text}`;
}

async function threeChats(t: TestContext): Promise<{
  ada: CliProcess;
  bob: CliProcess;
  cy: CliProcess;
  a: string;
  b: string;
  c: string;
}> {
  const { p: ada, address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
  const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
  await bob.waitFor(/^connected through /);
  const { p: cy, address: c } = await startListening(t, 'cy', ['chat', '--name', 'cy', '--join', a]);
  await cy.waitFor(/^connected through \S+: 2 members$/);
  await Promise.all([
    ada.waitFor(about(b, 'joined')),
    ada.waitFor(about(c, 'joined')),
    bob.waitFor(about(c, 'joined')),
    cy.waitFor(about(b, 'joined')),
  ]);
  return { ada, bob, cy, a, b, c };
}

describe('tsp2p chat through pipes', () => {
  test('prints where it listens and the exact command to join it, without colours or prompts', async (t) => {
    const { p, address } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    await p.waitFor(`others join with: npx tsp2p chat --join ${address}`);
    p.end();
    assert.equal(await p.waitExit(), 0);
    const all = [...p.lines.stdout, ...p.lines.stderr].join('\n');
    assert.ok(!all.includes('\x1b'), `escape codes on a pipe:\n${all}`);
    assert.ok(!all.includes('> '), `a prompt on a pipe:\n${all}`);
  });

  test('three chats join, broadcast, send direct messages and list each other', async (t) => {
    const { ada, bob, cy, a, b, c } = await threeChats(t);

    cy.send('hello all');
    await ada.waitFor(said(c, 'cy', 'hello all'));
    await bob.waitFor(said(c, 'cy', 'hello all'));

    bob.send(`/dm ${a} psst ada`);
    await ada.waitFor(said(b, 'bob', 'psst ada', true));
    // The direct message went to ada only: cy sees bob's next broadcast, and never the dm.
    bob.send('after the dm');
    await cy.waitFor(said(b, 'bob', 'after the dm'));
    await ada.waitFor(said(b, 'bob', 'after the dm'));
    assert.ok(!cy.lines.stdout.some((l) => l.includes('psst')), cy.dump());

    // A member's name works as the /dm target too.
    ada.send('/dm cy by name');
    await cy.waitFor(said(a, 'ada', 'by name', true));

    const mark = ada.mark();
    ada.send('/peers');
    await ada.waitFor(/^2 members:$/, { since: mark });
    // On a loaded machine a probe may time out: a member can be listed as suspect for a moment.
    await ada.waitFor(new RegExp(`^  ${b} \\(bob\\)  (alive|suspect)$`), { since: mark });
    await ada.waitFor(new RegExp(`^  ${c} \\(cy\\)  (alive|suspect)$`), { since: mark });
    assert.ok(
      ada.lines.stdout.slice(mark).some((l) => l === `you: ${a} (ada)`),
      ada.dump(),
    );
  });

  test('mistakes print one line on stderr and the chat carries on', async (t) => {
    const { ada, bob, b } = await threeChats(t);
    const mistakes: [string, RegExp][] = [
      ['/frobnicate', /^error: unknown command '\/frobnicate'/],
      ['/dm 127.0.0.1:1 nobody there', /^error: 127\.0\.0\.1:1 is not a member/],
      ['/dm nobody hello', /^error: 'nobody' is neither an address \(H:P\) nor a member's name/],
      ['/connect not-an-address', /^error: invalid address 'not-an-address'/],
      ['/connect 127.0.0.1:99999', /^error: invalid address .*port must be a number/],
      ['/dm', /^error: usage: \/dm H:P text$/],
      ['/peers now', /^error: \/peers takes no arguments$/],
    ];
    for (const [line, expected] of mistakes) {
      const mark = bob.mark('stderr');
      bob.send(line);
      const { index } = await bob.waitFor(expected, { stream: 'stderr', since: mark });
      assert.equal(index, mark, `one line for ${line}:\n${bob.dump()}`);
    }
    bob.send('still here');
    await ada.waitFor(said(b, 'bob', 'still here'));
    // `//` sends a line that starts with a slash.
    bob.send('//slash');
    await ada.waitFor(said(b, 'bob', '/slash'));
    assert.ok(!ada.lines.stdout.some((l) => l.includes('frobnicate')), ada.dump());
    assert.equal(bob.child.exitCode, null);
  });

  test('/disconnect leaves (the others see it) and /connect joins again', async (t) => {
    const { ada, bob, cy, a, b, c } = await threeChats(t);

    let marks = { ada: ada.mark(), bob: bob.mark(), cy: cy.mark() };
    bob.send('/disconnect');
    await bob.waitFor(/^left the network \(told 2 members\)/, { since: marks.bob });
    await ada.waitFor(about(b, 'left'), { since: marks.ada });
    await cy.waitFor(about(b, 'left'), { since: marks.cy });

    const errors = bob.mark('stderr');
    bob.send('talking to nobody');
    await bob.waitFor(/^error: not connected/, { stream: 'stderr', since: errors });
    marks = { ada: ada.mark(), bob: bob.mark(), cy: cy.mark() };
    bob.send('/peers');
    await bob.waitFor(/^no members yet/, { since: marks.bob });

    // cy still talks to ada.
    cy.send('just us');
    await ada.waitFor(said(c, 'cy', 'just us'));

    // gop2p's `connect <port>` means this machine.
    bob.send(`connect ${a.split(':')[1]}`);
    await bob.waitFor(`connected through ${a}: 2 members`, { since: marks.bob });
    await ada.waitFor(about(b, 'joined'), { since: marks.ada });
    await cy.waitFor(about(b, 'joined'), { since: marks.cy });
    bob.send('back again');
    await ada.waitFor(said(b, 'bob', 'back again'));
    await cy.waitFor(said(b, 'bob', 'back again'));

    // /disconnect, then a bare /connect joins the last entry point again.
    marks = { ada: ada.mark(), bob: bob.mark(), cy: cy.mark() };
    bob.send('/disconnect');
    await cy.waitFor(about(b, 'left'), { since: marks.cy });
    bob.send('/connect');
    await bob.waitFor(`connected through ${a}: 2 members`, { since: marks.bob });
    await cy.waitFor(about(b, 'joined'), { since: marks.cy });
    assert.ok(!ada.lines.stdout.some((l) => / failed/.test(l)), ada.dump());
  });

  test('a killed chat does not stop the others, and /exit and end of input leave cleanly', async (t) => {
    const { ada, bob, cy, a, b, c } = await threeChats(t);

    cy.kill('SIGKILL');
    await cy.waitExit();

    ada.send('after the crash');
    await bob.waitFor(said(a, 'ada', 'after the crash'));
    // ada retries cy until cy is declared dead (with three members, Lifeguard's suspicion
    // timeout is long: few can confirm it), then says that cy missed it, or that cy failed.
    const cyEscaped = c.replace(/\./g, '\\.');
    await ada.waitForAny(
      [
        [new RegExp(`^! ${cyEscaped} \\(cy\\) did not get it: `), { stream: 'stderr' }],
        [new RegExp(`^! ${cyEscaped} \\(cy\\) failed`), {}],
      ],
      60_000,
    );
    bob.send('still talking');
    await ada.waitFor(said(b, 'bob', 'still talking'));

    // /exit: bob leaves, ada sees a leave, and bob exits with 0. Input after /exit is dropped.
    bob.send('/exit');
    bob.send('never sent');
    await ada.waitFor(about(b, 'left'));
    assert.equal(await bob.waitExit(), 0);
    await bob.waitFor(/^left the network \(told \d members?\)/);
    assert.ok(!ada.lines.stdout.some((l) => l.includes('never sent')), ada.dump());
    assert.ok(!ada.lines.stdout.some((l) => about(b, 'failed').test(l)), ada.dump());

    // End of input: ada leaves (cy, dead, cannot be told) and exits with 0.
    ada.end();
    assert.equal(await ada.waitExit(), 0);
  });

  test('end of input sends what was read, then leaves; the others see a leave', async (t) => {
    const { p: ada, address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
    await ada.waitFor(about(b, 'joined'));
    // Written all at once, then the input ends: each line still goes out, in order.
    bob.send('one');
    bob.send('two');
    bob.send('three');
    bob.end();
    const one = await ada.waitFor(said(b, 'bob', 'one'));
    const two = await ada.waitFor(said(b, 'bob', 'two'));
    const three = await ada.waitFor(said(b, 'bob', 'three'));
    assert.ok(one.index < two.index && two.index < three.index, ada.dump());
    await ada.waitFor(about(b, 'left'));
    assert.equal(await bob.waitExit(), 0);
  });

  test('`exit`, SIGINT and SIGTERM leave gracefully too', async (t) => {
    const { p: ada, address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    for (const how of ['exit', 'SIGINT', 'SIGTERM'] as const) {
      const { p, address } = await startListening(t, how, ['chat', '--name', how, '--join', a]);
      await ada.waitFor(about(address, 'joined'));
      if (how === 'exit') p.send('exit');
      else p.kill(how);
      await ada.waitFor(about(address, 'left'));
      assert.equal(await p.waitExit(), 0, `${how}: ${p.dump()}`);
    }
  });

  test('a second Ctrl-C during a slow leave exits at once, with code 130', async (t) => {
    const { p: hub, address: h } = await startListening(t, 'hub', ['chat', '--name', 'hub']);
    const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', h]);
    await hub.waitFor(about(b, 'joined'));
    // A frozen member: telling it about the leave cannot finish until the leave timeout.
    hub.child.kill('SIGSTOP');
    t.after(() => void hub.child.kill('SIGCONT'));
    bob.kill('SIGINT');
    await bob.waitFor(/^leaving\.\.\.$/);
    // Signals that close together count as one Ctrl-C: repeat until one counts as the second.
    const exited = bob.waitExit();
    let done = false;
    void exited.finally(() => {
      done = true;
    });
    while (!done) {
      bob.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
    }
    assert.equal(await exited, 130, bob.dump());
    assert.ok(!bob.lines.stdout.some((l) => l.startsWith('left the network')), bob.dump());
  });
});

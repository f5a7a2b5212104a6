/**
 * A small network of Linux network namespaces for multi-host tests: one "switch" namespace
 * holding a bridge, and one namespace per host, each joined to the bridge by a veth pair and
 * given its own address in a private /24. Every interface lives inside a namespace made here,
 * so nothing on the machine's own network changes, and deleting the namespaces removes it all.
 *
 * Needs Linux, root and iproute2 (`ip`). {@link createNetnsLab} tells why when it cannot.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why namespaces cannot be made here (the test skips with this reason). */
export class NetnsUnavailableError extends Error {
  override readonly name = 'NetnsUnavailableError';
}

/** One host of the lab. */
export interface NetnsHost {
  /** The namespace's name. */
  readonly ns: string;
  /** The host's IPv4 address. */
  readonly address: string;
  /** The bridge port (in the switch namespace) that links this host. */
  readonly port: string;
}

/** Anything with `after()`: a test context. */
export interface HasAfter {
  after(fn: () => unknown): void;
}

/** Runs `ip` with `args`; rejects with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 20_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string | number };
    const why = (e.stderr ?? '').trim() || e.message;
    throw new Error(`ip ${args.join(' ')}: ${why}`, { cause: err });
  }
}

/** The lab: hosts on one bridge, and the means to cut a host off and to link it again. */
export class NetnsLab {
  readonly prefix: string;
  readonly switchNs: string;
  readonly subnet: string;
  readonly hosts: NetnsHost[] = [];
  readonly #created: string[] = [];

  constructor(prefix: string, subnetThirdOctet: number) {
    this.prefix = prefix;
    this.switchNs = `${prefix}sw`;
    this.subnet = `10.213.${subnetThirdOctet}`;
  }

  /** The command prefix that runs a program inside host `i`'s namespace. */
  wrap(i: number): string[] {
    return ['ip', 'netns', 'exec', this.#host(i).ns];
  }

  /** Cuts host `i` off: its bridge port goes down, as if its cable were pulled. */
  async cut(i: number): Promise<void> {
    await ip('-n', this.switchNs, 'link', 'set', this.#host(i).port, 'down');
  }

  /** Links host `i` again. */
  async restore(i: number): Promise<void> {
    await ip('-n', this.switchNs, 'link', 'set', this.#host(i).port, 'up');
  }

  /** Deletes every namespace this lab made (their interfaces go with them). Never throws. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    for (const ns of this.#created.splice(0).reverse()) {
      await ip('netns', 'del', ns).catch((err: Error) => problems.push(err.message));
    }
    return problems;
  }

  #host(i: number): NetnsHost {
    const h = this.hosts[i];
    if (h === undefined) throw new RangeError(`no host ${i}`);
    return h;
  }

  async addNamespace(ns: string): Promise<void> {
    await ip('netns', 'add', ns);
    this.#created.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
}

/** Namespaces named `tsp2p-<pid>-…` whose test process is gone: left by a killed run. */
async function removeStale(): Promise<void> {
  const list = await ip('netns', 'list').catch(() => '');
  for (const line of list.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const match = /^tsp2p-(\d+)-/.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    await ip('netns', 'del', name).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes a lab of `count` hosts, `10.213.N.2` … on a bridge, N derived from this process's pid.
 * Names carry the pid (`tsp2p-<pid>-…`), so parallel runs do not clash; the namespaces are
 * deleted when `t` ends, whether it passed or not.
 *
 * @throws {NetnsUnavailableError} when this machine cannot make namespaces (not Linux, not
 * root, no `ip`, or the kernel refused), with the reason.
 */
export async function createNetnsLab(t: HasAfter, count: number): Promise<NetnsLab> {
  if (process.platform !== 'linux') throw new NetnsUnavailableError(`not Linux (${process.platform})`);
  if (process.getuid?.() !== 0) throw new NetnsUnavailableError('not root: network namespaces need root');
  try {
    await ip('-V');
  } catch (err) {
    throw new NetnsUnavailableError(`no usable 'ip' (iproute2): ${(err as Error).message}`);
  }
  await removeStale();
  const lab = new NetnsLab(`tsp2p-${process.pid}-`, (process.pid % 250) + 1);
  t.after(async () => {
    const problems = await lab.destroy();
    if (problems.length > 0) console.error(`netns cleanup: ${problems.join('; ')}`);
  });
  try {
    await lab.addNamespace(lab.switchNs);
  } catch (err) {
    throw new NetnsUnavailableError(`cannot make a network namespace: ${(err as Error).message}`);
  }
  try {
    const sw = ['-n', lab.switchNs];
    await ip(...sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(...sw, 'link', 'set', 'br0', 'up');
    for (let i = 0; i < count; i++) {
      const host: NetnsHost = { ns: `${lab.prefix}h${i}`, address: `${lab.subnet}.${i + 2}`, port: `p${i}` };
      await lab.addNamespace(host.ns);
      // Both ends are made inside the switch namespace, and one is moved into the host's.
      await ip(...sw, 'link', 'add', host.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns);
      await ip(...sw, 'link', 'set', host.port, 'master', 'br0');
      await ip(...sw, 'link', 'set', host.port, 'up');
      await ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
      await ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
      lab.hosts.push(host);
    }
  } catch (err) {
    await lab.destroy();
    const why = (err as Error).message;
    // A kernel without bridges or veth pairs (or a sandbox that forbids them) cannot run the test;
    // any other error is a bug here, and fails.
    if (/not supported|unknown device type|not permitted|permission denied|no such device/i.test(why)) {
      throw new NetnsUnavailableError(`cannot build the bridge and veth pairs: ${why}`);
    }
    throw err;
  }
  return lab;
}

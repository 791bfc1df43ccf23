// Unit tests of the launcher's command line (launcher/cli/args.ts) and of host
// lists, hostfiles and rank placement (launcher/hostlist/hosts.ts), and of output line
// forwarding (launcher/job/output.ts). Pure functions: no
// processes here; the behaviour of real jobs is in launcher.test.ts.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseArgs, type Command, type RunOptions } from '../launcher/cli/args.js';
import { DEFAULT_PORT, isLocalHost, mayOversubscribe, parseHostfile, parseHostList, placeRanks, slotsOf, type HostSpec } from '../launcher/hostlist/hosts.js';
import { LineForwarder } from '../launcher/job/output.js';
import { TsmpiError } from '../runtime/errors.js';

function runOptions(argv: string[]): RunOptions {
  const c: Command = parseArgs(argv);
  if (c.kind !== 'run') throw new Error(`expected a run command, got ${c.kind}`);
  return c.options;
}

/** The call throws a TsmpiError with `code` whose message contains every fragment. */
function expectError(f: () => unknown, code: string, ...fragments: string[]): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(TsmpiError);
  expect((caught as TsmpiError).code).toBe(code);
  for (const f of fragments) expect((caught as TsmpiError).message).toContain(f);
}

describe('parseArgs: ranks', () => {
  it('has no -n by default (the launcher then uses the slots)', () => {
    const o = runOptions(['job.ts']);
    expect(o.np).toBeNull();
    expect(o.script).toBe('job.ts');
    expect(o.args).toEqual([]);
  });

  it.each([
    [['-n', '4'], 4],
    [['-np', '7'], 7],
    [['--np', '2'], 2],
    [['--np=3'], 3],
    [['-n', '1'], 1],
    [['-n', '2', '-n', '5'], 5],
  ])('%j gives %i ranks', (flags, n) => {
    expect(runOptions([...flags, 'job.ts']).np).toBe(n);
  });

  it.each(['0', '-1', '1.5', 'two', '', ' 3', '3x', '1e2', '0x10', '99999999999999999999'])('-n %j is refused, naming the option and the value', (v) => {
    expectError(() => parseArgs(['-n', v, 'job.ts']), 'ERR_ARG', '-n', JSON.stringify(v));
  });

  it('-np with a bad value names -np', () => {
    expectError(() => parseArgs(['-np', 'x', 'job.ts']), 'ERR_ARG', '-np must be a positive integer');
  });

  it('an option without its value says so', () => {
    expectError(() => parseArgs(['-n']), 'ERR_ARG', '-n needs a value');
    expectError(() => parseArgs(['--timeout']), 'ERR_ARG', '--timeout needs a value');
    expectError(() => parseArgs(['-x']), 'ERR_ARG', '-x needs a value');
  });
});

describe('parseArgs: -x', () => {
  it('takes NAME (from the launcher environment) and NAME=VALUE, in order, repeatable', () => {
    const o = runOptions(['-x', 'PATH', '-x', 'A=1', '-x', 'B=x=y', '-x', 'EMPTY=', '-x', '_Z9', 'job.ts']);
    expect(o.env).toEqual([
      ['PATH', null],
      ['A', '1'],
      ['B', 'x=y'],
      ['EMPTY', ''],
      ['_Z9', null],
    ]);
  });

  it.each(['1ABC', 'A-B', '', '=v', 'A B=1', 'Ä=1'])('refuses the bad name in -x %j', (v) => {
    expectError(() => parseArgs(['-x', v, 'job.ts']), 'ERR_ARG', '-x', 'not a valid environment variable name');
  });
});

describe('parseArgs: --timeout', () => {
  it.each([
    ['10', 10],
    ['0.5', 0.5],
    ['3600', 3600],
  ])('--timeout %s is %f seconds', (v, t) => {
    expect(runOptions(['--timeout', v, 'job.ts']).timeout).toBe(t);
    expect(runOptions([`--timeout=${v}`, 'job.ts']).timeout).toBe(t);
  });

  it.each(['0', '-1', 'abc', '', ' ', 'Infinity', 'NaN', '-0'])('refuses --timeout %j', (v) => {
    expectError(() => parseArgs(['--timeout', v, 'job.ts']), 'ERR_ARG', '--timeout must be a positive number of seconds');
  });

  it('is null when not given', () => {
    expect(runOptions(['job.ts']).timeout).toBeNull();
  });
});

describe('parseArgs: options, flags and the script', () => {
  it('reads every option', () => {
    const o = runOptions([
      '--host',
      'a:2,b',
      '--tag-output',
      '--oversubscribe',
      '--files',
      'x.csv, y.json,,',
      '--files=z',
      '--results',
      'out.jsonl',
      '--identity',
      'id',
      '--known-hosts',
      'kh',
      'job.ts',
    ]);
    expect(o).toMatchObject({
      hosts: 'a:2,b',
      tagOutput: true,
      oversubscribe: true,
      files: ['x.csv', 'y.json', 'z'],
      results: 'out.jsonl',
      identity: 'id',
      knownHosts: 'kh',
      script: 'job.ts',
    });
    expect(runOptions(['--no-oversubscribe', 'job.ts']).oversubscribe).toBe(false);
    expect(runOptions(['job.ts']).oversubscribe).toBeNull();
    expect(runOptions(['--hostfile', 'hf', 'job.ts']).hostfile).toBe('hf');
    expect(runOptions(['-H', 'h', 'job.ts']).hosts).toBe('h');
  });

  it('refuses unknown options, naming them', () => {
    expectError(() => parseArgs(['--bogus', 'job.ts']), 'ERR_ARG', 'unknown option "--bogus"');
    expectError(() => parseArgs(['-z', 'job.ts']), 'ERR_ARG', 'unknown option "-z"');
    expectError(() => parseArgs(['--bogus=1', 'job.ts']), 'ERR_ARG', 'unknown option "--bogus=1"');
  });

  it('refuses a value given to a flag', () => {
    expectError(() => parseArgs(['--tag-output=no', 'job.ts']), 'ERR_ARG', '--tag-output');
    expectError(() => parseArgs(['--oversubscribe=false', 'job.ts']), 'ERR_ARG', '--oversubscribe');
  });

  it('needs a script', () => {
    expectError(() => parseArgs([]), 'ERR_ARG', 'no SCRIPT given');
    expectError(() => parseArgs(['-n', '2']), 'ERR_ARG', 'no SCRIPT given');
    expectError(() => parseArgs(['-n', '2', '--']), 'ERR_ARG', 'no SCRIPT given');
  });

  it('refuses --host together with --hostfile', () => {
    expectError(() => parseArgs(['--host', 'a', '--hostfile', 'f', 'job.ts']), 'ERR_ARG', '--host or --hostfile');
  });

  it('keeps everything after SCRIPT for the script, verbatim', () => {
    const o = runOptions(['-n', '2', 'job.ts', '-n', '5', '--tag-output', '--', 'x y', '', '-x', 'A=1', '--bogus']);
    expect(o.np).toBe(2);
    expect(o.tagOutput).toBe(false);
    expect(o.env).toEqual([]);
    expect(o.script).toBe('job.ts');
    expect(o.args).toEqual(['-n', '5', '--tag-output', '--', 'x y', '', '-x', 'A=1', '--bogus']);
  });

  it('`--` ends the options, so a script may start with a dash', () => {
    const o = runOptions(['-n', '3', '--', '-odd-name.ts', '--help']);
    expect(o.np).toBe(3);
    expect(o.script).toBe('-odd-name.ts');
    expect(o.args).toEqual(['--help']);
    expect(runOptions(['--', '--', 'a']).script).toBe('--');
  });

  it('`-` alone is a script name, not an option', () => {
    expect(runOptions(['-', 'a']).script).toBe('-');
  });

  it('help and version', () => {
    expect(parseArgs(['-h']).kind).toBe('help');
    expect(parseArgs(['--help', 'job.ts']).kind).toBe('help');
    expect(parseArgs(['--version']).kind).toBe('version');
    // after the script, --help belongs to the script
    expect(runOptions(['job.ts', '--help']).args).toEqual(['--help']);
  });

  it('keygen', () => {
    expect(parseArgs(['keygen', '--out', 'd'])).toEqual({ kind: 'keygen', out: 'd' });
    expect(parseArgs(['keygen', '--out=d2'])).toEqual({ kind: 'keygen', out: 'd2' });
    expectError(() => parseArgs(['keygen']), 'ERR_ARG', '--out DIR is required');
    expectError(() => parseArgs(['keygen', '--out', 'd', '--x']), 'ERR_ARG', 'keygen: unknown argument');
  });
});

const host = (name: string, slots: number | null = null, maxSlots: number | null = null, port = DEFAULT_PORT): HostSpec => ({ name, slots, maxSlots, port });

describe('parseHostList (--host)', () => {
  it('reads names with and without slots', () => {
    expect(parseHostList('a:2,b')).toEqual([host('a', 2), host('b')]);
    expect(parseHostList(' a , b:3 ,')).toEqual([host('a'), host('b', 3)]);
    expect(parseHostList('localhost')).toEqual([host('localhost')]);
  });

  it('reads bracketed IPv6 addresses', () => {
    expect(parseHostList('[::1]:4,[fe80::1]')).toEqual([host('::1', 4), host('fe80::1')]);
  });

  it('adds up the slots of a host named twice', () => {
    expect(parseHostList('a:2,b,a:3')).toEqual([host('a', 5), host('b')]);
    expect(parseHostList('a,a')).toEqual([host('a', 2)]);
  });

  it.each([
    ['a:0', 'slots must be a positive integer'],
    ['a:', 'slots must be a positive integer'],
    ['a:x', 'slots must be a positive integer'],
    ['a:2:3', 'slots must be a positive integer'],
    ['', 'names no host'],
    [',,', 'names no host'],
  ])('refuses %j', (text, fragment) => {
    expectError(() => parseHostList(text), 'ERR_ARG', fragment);
  });
});

describe('parseHostfile (Open MPI format)', () => {
  it('reads names, slots, max_slots and ports; skips comments and blank lines', () => {
    const text = [
      '# the cluster',
      'node1 slots=4 max_slots=8',
      '',
      '   node2   slots=2   port=7000   # a comment after the fields',
      'node3',
      '\t# an indented comment',
      'node4 max-slots=3\r',
    ].join('\n');
    expect(parseHostfile(text)).toEqual([host('node1', 4, 8), host('node2', 2, null, 7000), host('node3'), host('node4', null, 3)]);
  });

  it('keeps one host on two ports apart, and adds up the slots of a repeated line', () => {
    expect(parseHostfile('a slots=1\na slots=2\na slots=1 port=1234\n')).toEqual([host('a', 3), host('a', 1, null, 1234)]);
  });

  it('adds up max_slots of a repeated host only when every line limits it', () => {
    expect(parseHostfile('a slots=1 max_slots=2\na slots=2 max_slots=3')).toEqual([host('a', 3, 5)]);
    expect(parseHostfile('a slots=1 max_slots=1\na slots=2')).toEqual([host('a', 3, null)]);
  });

  it.each([
    ['node1 slots=abc', 'hf:1: slots must be a positive integer'],
    ['node1 slots=0', 'hf:1: slots must be a positive integer'],
    ['node1 slots', 'hf:1: cannot read "slots"'],
    ['node1 slots = 2', 'hf:1: cannot read "slots"'],
    ['node1 cpus=2', 'hf:1: unknown field "cpus"'],
    ['# ok\nnode1 port=70000', 'hf:2: port must be at most 65535'],
    ['node1 port=0', 'hf:1: port must be a positive integer'],
    ['node1 slots=4 max_slots=2', 'hf:1: max_slots is below slots'],
    ['slots=2', 'hf:1: a line must start with a host name'],
    ['', 'hf names no host'],
    ['# only a comment\n\n', 'hf names no host'],
  ])('refuses %j with a message naming file and line', (text, fragment) => {
    expectError(() => parseHostfile(text, 'hf'), 'ERR_ARG', fragment);
  });
});

describe('placeRanks', () => {
  const cores = availableParallelism();
  const never = () => false;
  const always = () => true;
  const ranksOf = (hosts: HostSpec[], n: number, canOverflow: (h: HostSpec) => boolean) =>
    placeRanks(hosts, n, canOverflow).map((p) => [p.host.name, p.ranks]);

  it('fills hosts in order, slot by slot', () => {
    const hosts = [host('a', 2), host('b', 1), host('c', 3)];
    expect(ranksOf(hosts, 6, never)).toEqual([
      ['a', [0, 1]],
      ['b', [2]],
      ['c', [3, 4, 5]],
    ]);
    // fewer ranks than slots: later hosts stay empty and are left out
    expect(ranksOf(hosts, 3, never)).toEqual([
      ['a', [0, 1]],
      ['b', [2]],
    ]);
    expect(ranksOf(hosts, 1, never)).toEqual([['a', [0]]]);
  });

  it('gives a remote host without slots one slot, and localhost its cores', () => {
    expect(slotsOf(host('remote'))).toBe(1);
    expect(slotsOf(host('localhost'))).toBe(cores);
    expect(slotsOf(host('localhost', 3))).toBe(3);
    expect(ranksOf([host('r1'), host('r2')], 2, never)).toEqual([
      ['r1', [0]],
      ['r2', [1]],
    ]);
  });

  it('refuses more ranks than slots where no host may overflow', () => {
    expectError(() => placeRanks([host('a', 2), host('b', 1)], 4, never), 'ERR_ARG', '4 ranks need more than the 3 slots', '--oversubscribe');
    expectError(() => placeRanks([host('localhost')], cores + 1, never), 'ERR_ARG', `${cores + 1} ranks need more than the ${cores} slots`);
  });

  it('oversubscribes round the hosts that may overflow, after filling every slot', () => {
    expect(ranksOf([host('a', 2), host('b', 1)], 7, always)).toEqual([
      ['a', [0, 1, 3, 5]],
      ['b', [2, 4, 6]],
    ]);
    // only the local host may overflow (the launcher's default rule)
    const localOnly = (h: HostSpec) => h.name === 'localhost';
    expect(ranksOf([host('remote', 1), host('localhost', 1)], 4, localOnly)).toEqual([
      ['remote', [0]],
      ['localhost', [1, 2, 3]],
    ]);
    expectError(() => placeRanks([host('remote', 1)], 2, localOnly), 'ERR_ARG', 'allow --oversubscribe');
  });

  it("follows tsmpirun's rules: this machine oversubscribes by default, remote hosts only with --oversubscribe", () => {
    const rule = (flag: boolean | null) => (h: HostSpec) => mayOversubscribe(h, flag);
    expect(isLocalHost('localhost')).toBe(true);
    expect(isLocalHost('node1')).toBe(false);
    // the default (neither flag)
    expect(ranksOf([host('localhost')], cores + 2, rule(null))).toEqual([['localhost', Array.from({ length: cores + 2 }, (_, i) => i)]]);
    expectError(() => placeRanks([host('node1', 2)], 3, rule(null)), 'ERR_ARG', '3 ranks need more than the 2 slots');
    // --no-oversubscribe: slots are a limit here too
    expectError(() => placeRanks([host('localhost')], cores + 1, rule(false)), 'ERR_ARG', `${cores + 1} ranks need more than the ${cores} slots`);
    expect(ranksOf([host('localhost')], cores, rule(false))).toEqual([['localhost', Array.from({ length: cores }, (_, i) => i)]]);
    // --oversubscribe: remote hosts too
    expect(ranksOf([host('node1', 2)], 3, rule(true))).toEqual([['node1', [0, 1, 2]]]);
    // mixed, default: the remote host keeps to its slot, localhost takes the rest
    expect(ranksOf([host('node1', 1), host('localhost', 1)], 3, rule(null))).toEqual([
      ['node1', [0]],
      ['localhost', [1, 2]],
    ]);
  });

  it('never goes past max_slots, even when oversubscribing', () => {
    expect(ranksOf([host('a', 1, 2), host('b', 1, 3)], 5, always)).toEqual([
      ['a', [0, 2]],
      ['b', [1, 3, 4]],
    ]);
    expectError(() => placeRanks([host('a', 1, 2), host('b', 1, 3)], 6, always), 'ERR_ARG', 'exceed the slots and max_slots');
    expectError(() => placeRanks([host('a', 2, 2)], 3, always), 'ERR_ARG', '3 ranks need more than the 2 slots');
  });

  it('counts max_slots as the limit when slots are not given', () => {
    expect(slotsOf(host('localhost', null, 1))).toBe(1);
    expectError(() => placeRanks([host('localhost', null, 1)], 2, always), 'ERR_ARG');
    expect(slotsOf(host('remote', null, 4))).toBe(1);
  });
});

describe('LineForwarder (launcher/job/output.ts)', () => {
  const collect = (prefix: string) => {
    const writes: string[] = [];
    return { writes, fwd: new LineForwarder((t) => writes.push(t), prefix) };
  };

  it('passes on whole lines only, whatever the chunking, multi-byte characters included', () => {
    const text = 'héllo wörld\nzwei € zeilen\n🙂 drei\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const { writes, fwd } = collect('[3] ');
      fwd.push(bytes.subarray(0, cut));
      fwd.push(bytes.subarray(cut));
      fwd.flush();
      for (const w of writes) expect(w.endsWith('\n')).toBe(true);
      expect(writes.join('')).toBe('[3] héllo wörld\n[3] zwei € zeilen\n[3] 🙂 drei\n');
    }
  });

  it('ends a trailing partial line when tagging, and leaves it as is when not', () => {
    const tagged = collect('[0] ');
    tagged.fwd.push(Buffer.from('a\nno newline'));
    tagged.fwd.flush();
    expect(tagged.writes.join('')).toBe('[0] a\n[0] no newline\n');
    const plain = collect('');
    plain.fwd.push(Buffer.from('a\nno newline'));
    plain.fwd.flush();
    expect(plain.writes.join('')).toBe('a\nno newline');
  });
});

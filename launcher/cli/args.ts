/** `tsmpirun [options] SCRIPT [args…]`: the command line, validated. */
import { TsmpiError } from '../../runtime/errors.js';
import { parseMonitorAddress, type MonitorAddress } from '../monitor/address.js';

export interface RunOptions {
  np: number | null;
  hosts: string | null;
  hostfile: string | null;
  /** true: --oversubscribe; false: --no-oversubscribe; null: the default */
  oversubscribe: boolean | null;
  env: [string, string | null][];
  tagOutput: boolean;
  timeout: number | null;
  files: string[];
  results: string | null;
  identity: string | null;
  knownHosts: string | null;
  outputDir: string | null;
  quiet: boolean;
  report: boolean;
  /** seconds; null: off */
  detectDeadlock: number | null;
  /** --threads / --processes; null: TSMPI_LOCAL_MODE, else the default */
  localMode: LocalMode | null;
  /** --monitor [HOST:]PORT */
  monitor: MonitorAddress | null;
  /** --via: how other hosts are reached; null: the default (slurm inside an allocation, else tsmpid) */
  via: 'tsmpid' | 'ssh' | 'slurm' | null;
  /** --ssh-command, split into words */
  sshCommand: string[] | null;
  remoteNode: string | null;
  remotePrefix: string | null;
  script: string;
  args: string[];
}

/** How ranks on this machine run: worker threads of one process, or processes. */
export type LocalMode = 'threads' | 'processes';
/** The default when neither flag nor TSMPI_LOCAL_MODE says (see README "Threads or processes"). */
export const DEFAULT_LOCAL_MODE: LocalMode = 'processes';
export const LOCAL_MODE_ENV = 'TSMPI_LOCAL_MODE';

/** The flag, else TSMPI_LOCAL_MODE, else the default. */
export function localModeOf(flag: LocalMode | null, env: NodeJS.ProcessEnv = process.env): LocalMode {
  if (flag) return flag;
  const v = env[LOCAL_MODE_ENV];
  if (v === undefined || v === '') return DEFAULT_LOCAL_MODE;
  if (v === 'threads' || v === 'processes') return v;
  throw new TsmpiError('ERR_ARG', `${LOCAL_MODE_ENV} must be 'threads' or 'processes', got ${JSON.stringify(v)}`);
}

export type Command = { kind: 'run'; options: RunOptions } | { kind: 'keygen'; out: string } | { kind: 'help' } | { kind: 'version' };

export const USAGE = `usage: tsmpirun [options] SCRIPT [args…]
       tsmpirun keygen --out DIR

Starts ranks of SCRIPT (.ts or .js) that talk through 'tsmpi'.

options:
  -n, -np N               number of ranks (default: the slots available)
  --host h1[:slots],h2…   hosts to run on ('localhost' runs local children)
  --hostfile FILE         Open MPI hostfile: name slots=N [max_slots=M] [port=P]
  --oversubscribe         allow more ranks than slots on every host
  --no-oversubscribe      refuse more ranks than slots, also on this machine
  -x NAME[=VALUE]         export an environment variable to every rank
  --tag-output            prefix every output line with [rank]
  --timeout SECONDS       end the job after SECONDS (exit code 124) and say what
                          each unfinished rank was waiting on
  --files a,b,…           files shipped to every remote host beside the script
  --results FILE          write partial results as JSON lines ('-' for stdout)
  --via tsmpid|ssh|slurm  how ranks on other hosts start: their tsmpid (default),
                          an agent started over ssh, or one per node by srun
                          (the default inside a Slurm allocation)
  --ssh-command CMD       the ssh command and its options (default "ssh")
  --remote-node PATH      node on the other hosts (default "node")
  --remote-prefix DIR     the tsmpi package folder there (default: same as here)
  --identity FILE         the launcher's key (default ~/.tsmpi/id)
  --known-hosts FILE      pinned host keys (default ~/.tsmpi/known_hosts)
  --output-filename DIR   also write each rank's output to DIR/rank.N.out and .err
  --quiet                 with --output-filename: nothing to the terminal
  --report                at the end, a line a rank: host, wall and CPU time,
                          peak memory, messages and bytes, exit status
  --threads               ranks on this machine are worker threads of one process,
                          exchanging messages through shared memory
  --processes             ranks on this machine are processes (the default;
                          TSMPI_LOCAL_MODE=threads|processes sets it)
  --detect-deadlock[=S]   end the job (124) when every running rank is blocked
                          and no message is in flight for S seconds (default 10)
  --monitor [HOST:]PORT   a live web page of the job (host 127.0.0.1 unless
                          named; port 0: any free one); its URL, with an access
                          token, is printed on stderr
  -h, --help              this text
  --version               the version
`;

function usage(message: string): TsmpiError {
  return new TsmpiError('ERR_ARG', message);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseArgs(argv: string[]): Command {
  if (argv[0] === 'keygen') {
    let out: string | null = null;
    for (let i = 1; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--out') out = argv[++i] ?? null;
      else if (a.startsWith('--out=')) out = a.slice(6);
      else throw usage(`keygen: unknown argument ${JSON.stringify(a)}`);
    }
    if (!out) throw usage('keygen: --out DIR is required');
    return { kind: 'keygen', out };
  }
  const o: RunOptions = {
    np: null,
    hosts: null,
    hostfile: null,
    oversubscribe: null,
    env: [],
    tagOutput: false,
    timeout: null,
    files: [],
    results: null,
    identity: null,
    knownHosts: null,
    outputDir: null,
    quiet: false,
    report: false,
    detectDeadlock: null,
    localMode: null,
    monitor: null,
    via: null,
    sshCommand: null,
    remoteNode: null,
    remotePrefix: null,
    script: '',
    args: [],
  };
  let i = 0;
  const value = (name: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw usage(`${name} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') break;
    if (arg === '--') {
      i++;
      break;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const flag = () => {
      if (inline !== undefined) throw usage(`${name} takes no value, got ${JSON.stringify(arg)}`);
    };
    switch (name) {
      case '-h':
      case '--help':
        return { kind: 'help' };
      case '--version':
        return { kind: 'version' };
      case '-n':
      case '-np':
      case '--np': {
        const v = value(name, inline);
        const n = Number(v);
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw usage(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
        o.np = n;
        break;
      }
      case '--host':
      case '-H':
        o.hosts = value(name, inline);
        break;
      case '--hostfile':
        o.hostfile = value(name, inline);
        break;
      case '--oversubscribe':
        flag();
        o.oversubscribe = true;
        break;
      case '--no-oversubscribe':
        flag();
        o.oversubscribe = false;
        break;
      case '-x': {
        const v = value(name, inline);
        const k = v.indexOf('=');
        const key = k < 0 ? v : v.slice(0, k);
        if (!ENV_NAME.test(key)) throw usage(`-x: ${JSON.stringify(key)} is not a valid environment variable name`);
        o.env.push([key, k < 0 ? null : v.slice(k + 1)]);
        break;
      }
      case '--tag-output':
        flag();
        o.tagOutput = true;
        break;
      case '--quiet':
        flag();
        o.quiet = true;
        break;
      case '--threads':
      case '--processes': {
        flag();
        const mode = name === '--threads' ? 'threads' : 'processes';
        if (o.localMode !== null && o.localMode !== mode) throw usage('give --threads or --processes, not both');
        o.localMode = mode;
        break;
      }
      case '--report':
        flag();
        o.report = true;
        break;
      case '--output-filename':
        o.outputDir = value(name, inline);
        break;
      case '--detect-deadlock': {
        // The seconds are optional: `--detect-deadlock=5`, or `--detect-deadlock 5` when a number follows.
        let v = inline;
        if (v === undefined && /^\d+(\.\d+)?$/.test(argv[i + 1] ?? '')) v = argv[++i];
        const t = v === undefined ? 10 : Number(v);
        if (!Number.isFinite(t) || t <= 0) throw usage(`--detect-deadlock needs a positive number of seconds, got ${JSON.stringify(v)}`);
        o.detectDeadlock = t;
        break;
      }
      case '--timeout': {
        const v = value(name, inline);
        const t = Number(v);
        if (v.trim() === '' || !Number.isFinite(t) || t <= 0) throw usage(`--timeout must be a positive number of seconds, got ${JSON.stringify(v)}`);
        o.timeout = t;
        break;
      }
      case '--monitor':
        o.monitor = parseMonitorAddress(value(name, inline));
        break;
      case '--files':
        o.files.push(...value(name, inline).split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case '--results':
        o.results = value(name, inline);
        break;
      case '--identity':
        o.identity = value(name, inline);
        break;
      case '--via': {
        const v = value(name, inline);
        if (v !== 'tsmpid' && v !== 'ssh' && v !== 'slurm') throw usage(`--via must be tsmpid, ssh or slurm, got ${JSON.stringify(v)}`);
        o.via = v;
        break;
      }
      case '--ssh-command': {
        const words = splitCommand(value(name, inline));
        if (words.length === 0) throw usage('--ssh-command names no command');
        o.sshCommand = words;
        break;
      }
      case '--remote-node':
        o.remoteNode = value(name, inline);
        if (o.remoteNode === '') throw usage('--remote-node needs a path');
        break;
      case '--remote-prefix':
        o.remotePrefix = value(name, inline);
        if (o.remotePrefix === '') throw usage('--remote-prefix needs a folder');
        break;
      case '--known-hosts':
        o.knownHosts = value(name, inline);
        break;
      default:
        throw usage(`unknown option ${JSON.stringify(arg)}`);
    }
  }
  const script = argv[i];
  if (script === undefined) throw usage('no SCRIPT given');
  o.script = script;
  o.args = argv.slice(i + 1);
  if (o.quiet && o.outputDir === null) throw usage('--quiet needs --output-filename DIR (the output has to go somewhere)');
  if (o.hosts !== null && o.hostfile !== null) throw usage('give --host or --hostfile, not both');
  if (o.via === 'slurm' && (o.hosts !== null || o.hostfile !== null)) throw usage('--via slurm takes its hosts from the allocation: give no --host or --hostfile');
  if (o.via !== 'ssh' && o.sshCommand !== null) throw usage('--ssh-command needs --via ssh');
  return { kind: 'run', options: o };
}

/** `--via`, or its default: slurm inside an allocation when no host flag is given, else tsmpid. */
export function viaOf(o: RunOptions, env: NodeJS.ProcessEnv): 'tsmpid' | 'ssh' | 'slurm' {
  if (o.via !== null) return o.via;
  return env.SLURM_JOB_ID && o.hosts === null && o.hostfile === null ? 'slurm' : 'tsmpid';
}

/** Split `ssh -F "my cfg" -p 22` into words: whitespace separates, quotes and backslashes group. */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let cur: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur ??= '';
    } else if (c === '\\' && i + 1 < text.length) cur = (cur ?? '') + text[++i];
    else if (/\s/.test(c)) {
      if (cur !== null) words.push(cur);
      cur = null;
    } else cur = (cur ?? '') + c;
  }
  if (quote) throw usage(`--ssh-command: an unclosed ${quote}`);
  if (cur !== null) words.push(cur);
  return words;
}

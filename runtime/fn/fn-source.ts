/**
 * A function → the source text a worker evaluates again, checked here first.
 *
 * - Arrow functions, function expressions and declarations, and methods
 *   (`{ score(row) { … } }.score`) all work.
 * - esbuild's keep-names helper (`__name(fn, "fn")`, which tsx inserts around
 *   inner functions) is stripped: it does not exist where the source runs again.
 * - A function that reads a variable from its surroundings cannot work in a
 *   worker: that is `ERR_ARG`, naming the variable and pointing to `context`.
 * - Generators, classes, bound and native functions are `ERR_ARG` too: they
 *   cannot travel as source, or their results would not. Async functions are
 *   refused unless the caller awaits results (`allowAsync`: the task pool).
 *
 * Shared by tsmpi/dataframe and tsmpi/pool.
 */
import { parse } from 'acorn';
import { TsmpiError } from '../errors.js';
import { freeVariables, walk, type EsNode } from './scope.js';

export interface FnSource {
  /** an expression that evaluates to the function */
  source: string;
  /** the function's name, for messages */
  name: string;
}

/** Names a worker has as globals but a job script may not, or the reverse. */
const NEVER_GLOBAL = new Set(['require', 'module', 'exports', '__filename', '__dirname']);
const ALWAYS_GLOBAL = ['undefined', 'NaN', 'Infinity', 'globalThis', 'arguments', '__name'];

let globals: Set<string> | null = null;
function globalNames(): Set<string> {
  if (!globals) {
    const names = new Set<string>(ALWAYS_GLOBAL);
    for (let o: object | null = globalThis; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const k of Object.getOwnPropertyNames(o)) names.add(k);
    }
    for (const k of NEVER_GLOBAL) names.delete(k);
    globals = names;
  }
  return globals;
}

/**
 * Turn `fn` into source text. `what` names the call for messages (e.g.
 * `parallelApply`); `contextHint` is how the second argument reads in that call.
 */
export interface FnSourceOptions {
  /** async functions are fine (the caller awaits what they return) */
  allowAsync?: boolean;
  /** names the worker provides besides its globals (e.g. `reportPartial`) */
  provided?: readonly string[];
  /** how to get a value into the function instead: the end of the ERR_ARG message for a free variable */
  remedy?: (variable: string) => string;
}

export function functionSource(fn: unknown, what: string, contextHint = '(row, ctx) => … ctx.NAME', opts: FnSourceOptions = {}): FnSource {
  if (typeof fn !== 'function') {
    throw new TsmpiError('ERR_ARG', `${what}: the function argument must be a function, got ${fn === null ? 'null' : typeof fn}`);
  }
  const text = Function.prototype.toString.call(fn);
  const name = (fn as { name?: string }).name || 'the function';
  if (/^class\b/.test(text)) throw new TsmpiError('ERR_ARG', `${what}: ${name} is a class, not a function`);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    throw new TsmpiError('ERR_ARG', `${what}: ${name} is a native or bound function, which cannot travel as source text; pass a plain function`);
  }

  const parsed = parseFunction(text);
  if (!parsed) throw new TsmpiError('ERR_ARG', `${what}: cannot read the source of ${name}`);
  if (parsed.fn.async && !opts.allowAsync) throw new TsmpiError('ERR_ARG', `${what}: ${name} is async; pass a function that returns its value directly`);
  if (parsed.fn.generator) throw new TsmpiError('ERR_ARG', `${what}: ${name} is a generator; pass a function that returns its value`);

  const stripped = stripKeepNames(parsed.wrapped, parsed.program);
  const again = stripped === parsed.wrapped ? parsed : parseWrapped(stripped, parsed.method);
  if (!again) throw new TsmpiError('ERR_ARG', `${what}: cannot read the source of ${name}`);

  const allowed = globalNames();
  for (const [variable, at] of freeVariables(again.fn)) {
    if (allowed.has(variable) || opts.provided?.includes(variable)) continue;
    const line = lineAt(stripped, at);
    throw new TsmpiError(
      'ERR_ARG',
      `${what}: ${name} uses \`${variable}\`, a variable from outside the function (in \`${line}\`). ` +
        `The function runs in other processes from its source text, where \`${variable}\` does not exist. ` +
        (opts.remedy?.(variable) ??
          `Pass it in the \`context\` option ({ context: { ${variable} } }) and read it from the second argument: ${contextHint.replace('NAME', variable)}`),
    );
  }
  const source = parsed.method ? `Object.values(${stripped})[0]` : stripped;
  return { source, name: (fn as { name?: string }).name ?? '' };
}

interface Parsed {
  /** the text that was parsed: the source in parentheses, or in an object literal for a method */
  wrapped: string;
  program: EsNode;
  fn: EsNode;
  method: boolean;
}

function parseFunction(text: string): Parsed | null {
  return parseWrapped(`(${text}\n)`, false) ?? parseWrapped(`({${text}\n})`, true);
}

function parseWrapped(wrapped: string, method: boolean): Parsed | null {
  let program: EsNode;
  try {
    program = parse(wrapped, { ecmaVersion: 'latest', sourceType: 'script' }) as unknown as EsNode;
  } catch {
    return null;
  }
  const body = program.body as EsNode[];
  if (body.length !== 1 || body[0]!.type !== 'ExpressionStatement') return null;
  let fn = body[0]!.expression as EsNode;
  if (method) {
    const props = fn.type === 'ObjectExpression' ? (fn.properties as EsNode[]) : [];
    if (props.length !== 1 || props[0]!.type !== 'Property' || props[0]!.kind !== 'init') return null;
    fn = props[0]!.value as EsNode;
  }
  if (fn.type !== 'ArrowFunctionExpression' && fn.type !== 'FunctionExpression') return null;
  return { wrapped, program, fn, method };
}

interface NameCall {
  /** the range replaced: the call, or its whole statement */
  start: number;
  end: number;
  /** the first argument's range (kept), or null when the statement goes */
  keep: { start: number; end: number } | null;
}

/**
 * Remove esbuild's `__name(target, "name")` helper calls: a statement
 * `__name(inner, "inner");` goes, an expression `__name(() => …, "f")` becomes
 * its first argument. Nested calls are handled.
 */
export function stripKeepNames(src: string, program: EsNode): string {
  const calls: NameCall[] = [];
  for (const node of walk(program)) {
    if (node.type === 'ExpressionStatement' && isNameCall(node.expression as EsNode)) {
      calls.push({ start: node.start, end: node.end, keep: null });
    } else if (isNameCall(node)) {
      if (calls.some((c) => c.keep === null && c.start <= node.start && node.end <= c.end)) continue;
      const target = (node.arguments as EsNode[])[0]!;
      calls.push({ start: node.start, end: node.end, keep: { start: target.start, end: target.end } });
    }
  }
  if (calls.length === 0) return src;
  calls.sort((a, b) => a.start - b.start || b.end - a.end);
  const render = (lo: number, hi: number): string => {
    let out = '';
    let pos = lo;
    for (const c of calls) {
      if (c.start < pos || c.end > hi || c.start < lo) continue;
      out += src.slice(pos, c.start);
      if (c.keep) out += render(c.keep.start, c.keep.end);
      pos = c.end;
    }
    return out + src.slice(pos, hi);
  };
  return render(0, src.length);
}

function isNameCall(node: EsNode | undefined): boolean {
  if (!node || node.type !== 'CallExpression') return false;
  const callee = node.callee as EsNode;
  const args = node.arguments as EsNode[];
  return callee.type === 'Identifier' && callee.name === '__name' && args.length === 2 && args[0]!.type !== 'SpreadElement';
}

function lineAt(src: string, at: number): string {
  const from = src.lastIndexOf('\n', at - 1) + 1;
  let to = src.indexOf('\n', at);
  if (to < 0) to = src.length;
  const line = src.slice(from, to).trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/**
 * Free variables of a parsed function: every identifier it reads or writes that
 * none of its own scopes declare. Pure, over an ESTree (acorn's output).
 *
 * Scopes follow the language: `var` and parameters belong to the function, `let`,
 * `const`, `class` and function declarations to their block, `catch` parameters
 * to the clause, a named function expression's name to the function itself.
 */

/** An ESTree node, loosely typed: we only walk it. */
export interface EsNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

class Scope {
  private readonly names = new Set<string>();
  constructor(readonly parent: Scope | null) {}
  add(name: string): void {
    this.names.add(name);
  }
  has(name: string): boolean {
    for (let s: Scope | null = this; s; s = s.parent) if (s.names.has(name)) return true;
    return false;
  }
}

const SKIP_KEYS = new Set(['type', 'start', 'end', 'loc', 'range', 'raw']);

function isNode(v: unknown): v is EsNode {
  return typeof v === 'object' && v !== null && typeof (v as EsNode).type === 'string';
}

function children(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const key of Object.keys(node)) {
    if (SKIP_KEYS.has(key)) continue;
    const v = node[key];
    if (Array.isArray(v)) {
      for (const c of v) if (isNode(c)) out.push(c);
    } else if (isNode(v)) out.push(v);
  }
  return out;
}

const n = (v: unknown): EsNode => v as EsNode;
const list = (v: unknown): EsNode[] => ((v as (EsNode | null)[] | undefined) ?? []).filter((x): x is EsNode => x !== null);

/** Free variable names of `root`, each with the offset of its first use. */
export function freeVariables(root: EsNode): Map<string, number> {
  const free = new Map<string, number>();
  const ref = (id: EsNode, scope: Scope) => {
    const name = id.name as string;
    if (!scope.has(name) && !free.has(name)) free.set(name, id.start);
  };

  const visit = (node: EsNode | null | undefined, scope: Scope): void => {
    if (!node) return;
    switch (node.type) {
      case 'Identifier':
        ref(node, scope);
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        visitFunction(node, scope);
        return;
      case 'ClassDeclaration':
      case 'ClassExpression': {
        const inner = new Scope(scope);
        if (node.id) inner.add(n(node.id).name as string);
        visit(n(node.superClass), scope);
        visit(n(node.body), inner);
        return;
      }
      case 'MethodDefinition':
      case 'PropertyDefinition':
      case 'Property':
        if (node.computed) visit(n(node.key), scope);
        visit(n(node.value), scope);
        return;
      case 'BlockStatement':
      case 'StaticBlock': {
        const inner = new Scope(scope);
        declareLexical(list(node.body), inner);
        for (const s of list(node.body)) visit(s, inner);
        return;
      }
      case 'SwitchStatement': {
        visit(n(node.discriminant), scope);
        const inner = new Scope(scope);
        const cases = list(node.cases);
        for (const c of cases) declareLexical(list(c.consequent), inner);
        for (const c of cases) {
          visit(n(c.test), inner);
          for (const s of list(c.consequent)) visit(s, inner);
        }
        return;
      }
      case 'ForStatement':
      case 'ForInStatement':
      case 'ForOfStatement': {
        const inner = new Scope(scope);
        const head = n(node.type === 'ForStatement' ? node.init : node.left);
        if (head && head.type === 'VariableDeclaration') {
          if (head.kind !== 'var') for (const d of list(head.declarations)) declarePattern(n(d.id), inner);
          visit(head, inner);
        } else if (head && node.type !== 'ForStatement') assignTarget(head, inner);
        else visit(head, inner);
        for (const key of ['test', 'update', 'right', 'body']) visit(n(node[key]), inner);
        return;
      }
      case 'CatchClause': {
        const inner = new Scope(scope);
        if (node.param) {
          declarePattern(n(node.param), inner);
          patternExpressions(n(node.param), inner);
        }
        visit(n(node.body), inner);
        return;
      }
      case 'VariableDeclaration':
        for (const d of list(node.declarations)) {
          patternExpressions(n(d.id), scope);
          visit(n(d.init), scope);
        }
        return;
      case 'MemberExpression':
        visit(n(node.object), scope);
        if (node.computed) visit(n(node.property), scope);
        return;
      case 'AssignmentExpression':
        assignTarget(n(node.left), scope);
        visit(n(node.right), scope);
        return;
      case 'LabeledStatement':
        visit(n(node.body), scope);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
      case 'MetaProperty':
      case 'Literal':
      case 'ThisExpression':
      case 'Super':
      case 'PrivateIdentifier':
        return;
      default:
        for (const c of children(node)) visit(c, scope);
    }
  };

  const visitFunction = (fn: EsNode, scope: Scope): void => {
    let outer = scope;
    if (fn.type === 'FunctionExpression' && fn.id) {
      outer = new Scope(scope);
      outer.add(n(fn.id).name as string);
    }
    const inner = new Scope(outer);
    if (fn.type !== 'ArrowFunctionExpression') inner.add('arguments');
    const params = list(fn.params);
    for (const p of params) declarePattern(p, inner);
    const body = n(fn.body);
    if (body.type === 'BlockStatement') {
      declareVars(body, inner);
      declareLexical(list(body.body), inner);
      for (const p of params) patternExpressions(p, inner);
      for (const s of list(body.body)) visit(s, inner);
    } else {
      for (const p of params) patternExpressions(p, inner);
      visit(body, inner);
    }
  };

  /** An assignment's target: names in it are uses of existing bindings. */
  const assignTarget = (p: EsNode | null, scope: Scope): void => {
    if (!p) return;
    switch (p.type) {
      case 'Identifier':
        ref(p, scope);
        return;
      case 'ObjectPattern':
        for (const prop of list(p.properties)) {
          if (prop.type === 'RestElement') assignTarget(n(prop.argument), scope);
          else {
            if (prop.computed) visit(n(prop.key), scope);
            assignTarget(n(prop.value), scope);
          }
        }
        return;
      case 'ArrayPattern':
        for (const e of list(p.elements)) assignTarget(e, scope);
        return;
      case 'AssignmentPattern':
        assignTarget(n(p.left), scope);
        visit(n(p.right), scope);
        return;
      case 'RestElement':
        assignTarget(n(p.argument), scope);
        return;
      default:
        visit(p, scope);
    }
  };

  /** Default values and computed keys inside a binding pattern. */
  const patternExpressions = (p: EsNode | null, scope: Scope): void => {
    if (!p) return;
    switch (p.type) {
      case 'ObjectPattern':
        for (const prop of list(p.properties)) {
          if (prop.type === 'RestElement') patternExpressions(n(prop.argument), scope);
          else {
            if (prop.computed) visit(n(prop.key), scope);
            patternExpressions(n(prop.value), scope);
          }
        }
        return;
      case 'ArrayPattern':
        for (const e of list(p.elements)) patternExpressions(e, scope);
        return;
      case 'AssignmentPattern':
        patternExpressions(n(p.left), scope);
        visit(n(p.right), scope);
        return;
      case 'RestElement':
        patternExpressions(n(p.argument), scope);
        return;
    }
  };

  visit(root, new Scope(null));
  return free;
}

/** The names a binding pattern declares. */
function declarePattern(p: EsNode | null, scope: Scope): void {
  if (!p) return;
  switch (p.type) {
    case 'Identifier':
      scope.add(p.name as string);
      return;
    case 'ObjectPattern':
      for (const prop of list(p.properties)) declarePattern(n(prop.type === 'RestElement' ? prop.argument : prop.value), scope);
      return;
    case 'ArrayPattern':
      for (const e of list(p.elements)) declarePattern(e, scope);
      return;
    case 'AssignmentPattern':
      declarePattern(n(p.left), scope);
      return;
    case 'RestElement':
      declarePattern(n(p.argument), scope);
      return;
  }
}

/** `let`, `const`, `class` and function declarations directly in a statement list. */
function declareLexical(statements: EsNode[], scope: Scope): void {
  for (const s of statements) {
    if (s.type === 'VariableDeclaration' && s.kind !== 'var') for (const d of list(s.declarations)) declarePattern(n(d.id), scope);
    else if ((s.type === 'ClassDeclaration' || s.type === 'FunctionDeclaration') && s.id) scope.add(n(s.id).name as string);
  }
}

/** Every `var` of a function body, in any nested block but not in nested functions. */
function declareVars(node: EsNode, scope: Scope): void {
  for (const c of children(node)) {
    if (c.type === 'FunctionDeclaration' || c.type === 'FunctionExpression' || c.type === 'ArrowFunctionExpression') continue;
    if (c.type === 'ClassDeclaration' || c.type === 'ClassExpression') continue;
    if (c.type === 'VariableDeclaration' && c.kind === 'var') for (const d of list(c.declarations)) declarePattern(n(d.id), scope);
    declareVars(c, scope);
  }
}

/** Every node of the tree, depth first (for callers that look for a pattern). */
export function* walk(node: EsNode): Generator<EsNode> {
  yield node;
  for (const c of children(node)) yield* walk(c);
}

/**
 * A parsed YAML job file that remembers where each key and value is, so problems found later
 * (by the schema, or by the run) can point at `line:column` in the file.
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type YAMLMap,
} from "yaml";

/** 1-based line and column. */
export interface Pos {
  line: number;
  col: number;
}

/** A key path inside the document: map keys, and sequence indices as numbers or digit strings. */
export type KeyPath = readonly (string | number)[];

/** A syntax-level problem (YAML error or warning, duplicate key, bad alias). */
export interface SourceIssue {
  pos: Pos;
  path: KeyPath;
  message: string;
}

/** The result of {@link parseSource}. */
export interface YamlSource {
  /** The document as plain data (aliases and `<<` merges resolved); undefined when empty. */
  value: unknown;
  /** Every syntax problem, in file order; `value` is not to be trusted when there are any. */
  issues: SourceIssue[];
  /** Position of the value at `path` (the key when the value is empty), if it is in the file. */
  valuePos(path: KeyPath): Pos | undefined;
  /** Position of the key at the end of `path`, if it is in the file. */
  keyPos(path: KeyPath): Pos | undefined;
}

/** Parses YAML text, collecting all syntax problems instead of stopping at the first. */
export function parseSource(text: string): YamlSource {
  const lines = new LineCounter();
  // merge: `<<: *base` is common in config files; prettyErrors off so messages stay one line.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  const at = (offset: number): Pos => lines.linePos(offset);

  const issues: SourceIssue[] = [];
  const walked = walk(doc, at);
  for (const e of [...doc.errors, ...doc.warnings]) {
    // Our own duplicate-key report names the key and points at it; yaml's points near it.
    if (e.code === "DUPLICATE_KEY" && walked.duplicates > 0) continue;
    issues.push({ pos: at(e.pos[0]), path: [], message: e.message });
  }
  issues.push(...walked.issues);

  let value: unknown;
  if (issues.length === 0) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      // e.g. a merge (`<<`) of something that is not a mapping, or too many aliases.
      issues.push({ pos: { line: 1, col: 1 }, path: [], message: (error as Error).message });
    }
  }
  issues.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);

  const find = (path: KeyPath) => findNode(doc, path);
  return {
    value,
    issues,
    valuePos(path) {
      const found = find(path);
      if (!found) return undefined;
      const { node, pair } = found;
      const empty = isScalar(node) && node.value === null && !node.source;
      if (isNodeWithRange(node) && !(empty && pair)) return at(node.range[0]);
      return isNodeWithRange(pair?.key) ? at(pair.key.range[0]) : undefined;
    },
    keyPos(path) {
      const key = find(path)?.pair?.key;
      return isNodeWithRange(key) ? at(key.range[0]) : undefined;
    },
  };
}

function isNodeWithRange(node: unknown): node is Node & { range: [number, number, number] } {
  return typeof node === "object" && node !== null && "range" in node && Array.isArray(node.range);
}

/** The plain-data name of a map key, or undefined for `<<` merges and complex keys. */
function keyName(pair: Pair): string | undefined {
  if (!isScalar(pair.key)) return undefined;
  return typeof pair.key.value === "symbol" ? undefined : String(pair.key.value);
}

function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

/** The node at `path` and the pair holding it, following aliases and `<<` merges. */
function findNode(doc: Document, path: KeyPath): { node: unknown; pair?: Pair } | undefined {
  let node: unknown = doc.contents;
  let pair: Pair | undefined;
  for (const key of path) {
    const container = deref(doc, node);
    if (isMap(container)) {
      pair = findPair(doc, container, String(key), new Set());
      if (!pair) return undefined;
      node = pair.value;
    } else if (isSeq(container) && /^\d+$/.test(String(key))) {
      node = container.items[Number(key)];
      pair = undefined;
      if (node === undefined) return undefined;
    } else {
      return undefined;
    }
  }
  return { node, pair };
}

function findPair(doc: Document, map: YAMLMap, key: string, seen: Set<unknown>): Pair | undefined {
  if (seen.has(map)) return undefined;
  seen.add(map);
  // Explicit keys win over merged ones; the last duplicate wins, as in toJS().
  const own = map.items.findLast((p) => keyName(p) === key);
  if (own) return own;
  for (const merge of map.items.filter((p) => isScalar(p.key) && typeof p.key.value === "symbol")) {
    const source = deref(doc, merge.value);
    const sources = isSeq(source) ? source.items.map((s) => deref(doc, s)) : [source];
    for (const s of sources) {
      const found = isMap(s) ? findPair(doc, s, key, seen) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

/** Finds duplicate keys (reported at the second one) and aliases to unknown anchors. */
function walk(doc: Document, at: (offset: number) => Pos) {
  const issues: SourceIssue[] = [];
  let duplicates = 0;
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (isAlias(node)) {
      if (node.resolve(doc) === undefined && isNodeWithRange(node)) {
        issues.push({ pos: at(node.range[0]), path, message: `unknown alias "*${node.source}"` });
      }
    } else if (isMap(node)) {
      const first = new Map<string, Pair>();
      for (const pair of node.items) {
        const name = keyName(pair);
        const prior = name === undefined ? undefined : first.get(name);
        if (name !== undefined && prior && isNodeWithRange(pair.key)) {
          duplicates++;
          const line = isNodeWithRange(prior.key)
            ? ` (first at line ${at(prior.key.range[0]).line})`
            : "";
          issues.push({
            pos: at(pair.key.range[0]),
            path: [...path, name],
            message: `duplicate key "${name}"${line}`,
          });
        } else if (name !== undefined) {
          first.set(name, pair);
        }
        visit(pair.value, name === undefined ? path : [...path, name]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]));
    }
  };
  visit(doc.contents, []);
  return { issues, duplicates };
}

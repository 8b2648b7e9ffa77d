/**
 * A job's answer schema as Anthropic structured outputs accept it (`output_config.format.schema`).
 *
 * The API takes a subset of JSON Schema (structured-outputs guide, "JSON Schema limitations"):
 * every object must say `additionalProperties: false`; `minItems` only 0 or 1; a few string
 * formats; no numeric, length or other array bounds; no recursion, no external `$ref`; `enum` and
 * `const` of primitives only. Like the SDK's own helper, Loom closes every object, drops
 * `$schema`, turns `oneOf` into `anyOf` and a list of types into an `anyOf`, and moves every other
 * constraint into the node's `description` as JSON (`{"minItems":2}`), where the model reads it.
 * The answer is still checked against the job's own schema, so nothing is lost. What cannot be
 * sent even so (a recursive schema, an open map, an untyped node, …) is a problem the job is
 * refused for, before any work.
 * @module
 */

type Schema = Record<string, unknown>;

/** The string formats structured outputs support. */
const STRING_FORMATS = new Set([
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "uri",
  "ipv4",
  "ipv6",
  "uuid",
]);

/** The schema to send, and why it cannot be sent (empty when it can). */
export interface AnthropicSchema {
  readonly schema: Schema;
  /** Each names the place in the schema (`properties.tags`) and the reason. */
  readonly problems: readonly string[];
  /** Keywords moved into descriptions (the API does not enforce them), sorted. */
  readonly moved: readonly string[];
}

const cache = new WeakMap<object, AnthropicSchema>();

/** The job's answer schema rewritten for the API (computed once per schema object). */
export function anthropicSchema(schema: Readonly<Schema>): AnthropicSchema {
  let out = cache.get(schema);
  if (!out) {
    const problems: string[] = [];
    const moved = new Set<string>();
    const sent = rewrite(schema, "", problems, moved);
    problems.push(...recursionProblems(schema));
    out = { schema: sent, problems, moved: [...moved].sort() };
    cache.set(schema, out);
  }
  return out;
}

function isObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const isPrimitive = (value: unknown) => value === null || typeof value !== "object";

/** One schema node rewritten; `at` is its place for problems (empty at the root). */
function rewrite(input: unknown, at: string, problems: string[], moved: Set<string>): Schema {
  const where = at || "the schema";
  if (!isObject(input)) {
    problems.push(
      `${where}: a schema must be a mapping (true/false schemas cannot be sent to Anthropic)`,
    );
    return {};
  }
  const rest: Schema = { ...input };
  const take = (key: string) => {
    const value = rest[key];
    delete rest[key];
    return value;
  };
  const child = (value: unknown, path: string) =>
    rewrite(value, at ? `${at}.${path}` : path, problems, moved);
  delete rest.$schema; // names the dialect; constrains nothing
  const out: Schema = {};

  // A list of types is an anyOf of one type each, the other keywords applying to every branch.
  if (
    Array.isArray(rest.type) && rest.type.length > 1 && rest.anyOf === undefined &&
    rest.oneOf === undefined
  ) {
    const { type, description, title, ...shared } = rest;
    const branches = (type as unknown[]).map((t) => ({ ...shared, type: t }));
    return rewrite(
      {
        ...(description === undefined ? {} : { description }),
        ...(title === undefined ? {} : { title }),
        anyOf: branches,
      },
      at,
      problems,
      moved,
    );
  }
  if (Array.isArray(rest.type) && rest.type.length === 1) rest.type = rest.type[0];

  for (const key of ["$defs", "definitions"]) {
    const defs = take(key);
    if (isObject(defs)) {
      out[key] = Object.fromEntries(
        Object.entries(defs).map(([name, def]) => [name, child(def, `${key}.${name}`)]),
      );
    }
  }
  const ref = take("$ref");
  if (ref !== undefined) {
    if (typeof ref !== "string" || !ref.startsWith("#")) {
      problems.push(
        `${where}: $ref ${
          JSON.stringify(ref)
        } is not a local reference (Anthropic takes only "#…" references)`,
      );
    }
    out.$ref = ref;
  }
  if (rest.enum !== undefined) {
    if (!Array.isArray(rest.enum) || !rest.enum.every(isPrimitive)) {
      problems.push(
        `${where}: enum values must be strings, numbers, booleans or null for Anthropic`,
      );
    }
    out.enum = take("enum");
  }
  if (rest.const !== undefined) {
    if (!isPrimitive(rest.const)) {
      problems.push(`${where}: const must be a string, number, boolean or null for Anthropic`);
    }
    out.const = take("const");
  }
  const anyOf = take("anyOf");
  const oneOf = take("oneOf");
  const allOf = take("allOf");
  if (Array.isArray(anyOf) && Array.isArray(oneOf)) {
    problems.push(`${where}: anyOf and oneOf together cannot be sent to Anthropic`);
  }
  // oneOf is sent as anyOf: looser, and the answer is still checked against the job's schema.
  const union = Array.isArray(anyOf) ? anyOf : oneOf;
  if (Array.isArray(union)) {
    out.anyOf = union.map((s, i) => child(s, `${Array.isArray(anyOf) ? "anyOf" : "oneOf"}.${i}`));
  }
  if (Array.isArray(allOf)) out.allOf = allOf.map((s, i) => child(s, `allOf.${i}`));

  const type = take("type");
  if (type !== undefined) out.type = type;
  else if (
    ref === undefined && out.enum === undefined && out.const === undefined && !out.anyOf &&
    !out.allOf
  ) {
    problems.push(
      `${where}: a node without a type (any value) cannot be sent to Anthropic; give it a type, enum, const or anyOf`,
    );
  }
  for (const key of ["title", "description"]) if (rest[key] !== undefined) out[key] = take(key);

  if (type === "object") {
    const properties = take("properties");
    out.properties = isObject(properties)
      ? Object.fromEntries(
        Object.entries(properties).map(([name, s]) => [name, child(s, `properties.${name}`)]),
      )
      : {};
    const extra = take("additionalProperties");
    if (!Object.keys(out.properties as Schema).length && extra === undefined) {
      problems.push(
        `${where}: an object without properties could only be {} once closed (Anthropic requires additionalProperties: false); list its properties`,
      );
    } else if (extra !== undefined && extra !== false) {
      problems.push(
        `${where}: additionalProperties ${
          JSON.stringify(extra)
        } cannot be sent: Anthropic requires every object to be closed (additionalProperties: false); list the properties instead`,
      );
    }
    out.additionalProperties = false;
    if (rest.required !== undefined) out.required = take("required");
  } else if (
    type === "string" && typeof rest.format === "string" && STRING_FORMATS.has(rest.format)
  ) {
    out.format = take("format");
  } else if (type === "array") {
    if (Array.isArray(rest.items)) {
      problems.push(`${where}: items as a list (a tuple) cannot be sent to Anthropic`);
    } else if (rest.items !== undefined) out.items = child(take("items"), "items");
    if (rest.minItems === 0 || rest.minItems === 1) out.minItems = take("minItems");
  }

  // The rest are constraints the API does not take: the model reads them in the description.
  if (Object.keys(rest).length) {
    for (const key of Object.keys(rest)) moved.add(key);
    const note = JSON.stringify(rest);
    out.description = typeof out.description === "string" && out.description
      ? `${out.description}\n\n${note}`
      : note;
  }
  return out;
}

/** A problem for each `$ref` that leads back into itself (the API refuses recursive schemas). */
function recursionProblems(root: Readonly<Schema>): string[] {
  const found = new Set<string>();
  const resolve = (ref: string): unknown => {
    if (ref === "#") return root;
    const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    return match && isObject(root[match[1]]) ? (root[match[1]] as Schema)[match[2]] : undefined;
  };
  const visit = (node: unknown, refs: readonly string[]): void => {
    if (Array.isArray(node)) return node.forEach((n) => visit(n, refs));
    if (!isObject(node)) return;
    if (typeof node.$ref === "string") {
      if (refs.includes(node.$ref)) found.add(node.$ref);
      else visit(resolve(node.$ref), [...refs, node.$ref]);
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "$defs" || key === "definitions" || key === "enum" || key === "const") continue;
      if (key === "properties" && isObject(value)) {
        Object.values(value).forEach((v) => visit(v, refs));
      } else if (typeof value === "object") visit(value, refs);
    }
  };
  visit(root, ["#"]);
  for (const key of ["$defs", "definitions"]) {
    const defs = root[key];
    if (isObject(defs)) {
      for (const [name, def] of Object.entries(defs)) visit(def, [`#/${key}/${name}`]);
    }
  }
  return [...found].map((ref) =>
    `the schema is recursive ($ref ${
      JSON.stringify(ref)
    } leads back into itself); Anthropic structured outputs do not support recursive schemas`
  );
}

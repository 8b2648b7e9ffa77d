/**
 * Finds and imports third-party plugin modules named in a job's `plugins:` list or in
 * `LOOM_PLUGINS`: a path (relative to the job file) or an installed package name, looked up in
 * the `node_modules` folders above the job file, as Node would, then from Loom's own location.
 * A path plugin written as an ES module loads in any project: in a folder whose package.json says
 * `"type": "commonjs"` (npm's default), Node would run its `.ts`/`.js` as CommonJS and fail on
 * `export`, so the loader loads it (and the files beside it) as a module instead.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { errorMessage, LoomPluginError } from "../base/errors.ts";
import { runtimeName } from "../base/runtime.ts";

/** True when a plugin reference is a file path rather than a package name. */
export function isPathReference(ref: string): boolean {
  return ref.startsWith("./") || ref.startsWith("../") || ref.startsWith("file:") ||
    isAbsolute(ref) ||
    // `plugins/acme.ts` is a file, not a package named like one.
    /\.(ts|mts|js|mjs|cjs)$/.test(ref);
}

type ExportsField = string | { [condition: string]: ExportsField } | undefined;

/** Picks the entry of a package.json `exports` value for `import` on this runtime. */
function pickExport(field: ExportsField): string | undefined {
  if (typeof field === "string") return field;
  if (!field || typeof field !== "object") return undefined;
  if ("." in field) return pickExport(field["."]);
  for (const condition of [runtimeName(), "import", "default"]) {
    if (condition in field) {
      const picked = pickExport(field[condition]);
      if (picked) return picked;
    }
  }
  return undefined;
}

/** Resolves an installed package's entry file, searching `node_modules` upward from `fromDir`. */
export function resolvePackage(name: string, fromDir: string): string | undefined {
  for (let dir = resolve(fromDir);; dir = dirname(dir)) {
    const pkgDir = join(dir, "node_modules", ...name.split("/"));
    const manifest = join(pkgDir, "package.json");
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, "utf8"));
      const entry = pickExport(pkg.exports) ?? pkg.module ?? pkg.main ?? "index.js";
      return join(pkgDir, entry);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Folders (as `file:` URL prefixes) whose files Node must load as ES modules. */
const esmScopes = new Set<string>();

/**
 * Makes Node load the `.ts` and `.js` files under `dir` (not its `node_modules`) that import or
 * export as ES modules, whatever the nearest package.json says. A no-op where Node cannot (before
 * 22.15).
 */
function loadAsModules(dir: string): void {
  const register = (nodeModule as { registerHooks?: typeof nodeModule.registerHooks })
    .registerHooks;
  if (typeof register !== "function") return;
  if (esmScopes.size === 0) {
    register({
      load(url, context, nextLoad) {
        const loaded = nextLoad(url, context);
        const cjs = loaded.format === "commonjs" || loaded.format === "commonjs-typescript";
        const path = new URL(url).pathname;
        if (!cjs || !/\.(ts|js)$/.test(path) || path.includes("/node_modules/")) return loaded;
        if (![...esmScopes].some((scope) => url.startsWith(scope))) return loaded;
        // Node's CommonJS loader reads the file itself, so the source may be missing here.
        const source = loaded.source ?? readFileSync(fileURLToPath(url));
        // A file written as CommonJS (`module.exports`, no import or export) stays CommonJS.
        if (!/^\s*(import|export)\b/m.test(String(source))) return loaded;
        return { format: loaded.format === "commonjs" ? "module" : "module-typescript", source };
      },
    });
  }
  esmScopes.add(pathToFileURL(dir + sep).href);
}

/** Node and Deno refuse to strip types under node_modules; their messages say so. */
const TS_IN_NODE_MODULES =
  /ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING|unsupported for files under node_modules|TypeScript files are not supported in npm packages/;

/** Imports a plugin module and returns its default export. */
export async function importPluginModule(ref: string, baseDir: string): Promise<unknown> {
  let specifier: string;
  let file: string | undefined;
  if (ref.startsWith("file:")) specifier = ref;
  else if (isPathReference(ref)) {
    file = resolve(baseDir, ref);
    if (!existsSync(file)) throw new LoomPluginError(`plugin ${ref}: no such file ${file}`);
    specifier = pathToFileURL(file).href;
  } else {
    const entry = resolvePackage(ref, baseDir);
    specifier = entry ? pathToFileURL(entry).href : ref;
  }
  // On Node, an ES module under `"type": "commonjs"` would run as CommonJS and fail on `export`.
  if (file && /\.(ts|js)$/.test(file) && runtimeName() === "node") loadAsModules(dirname(file));
  let module: { default?: unknown };
  try {
    module = await import(specifier);
  } catch (error) {
    throw loadError(ref, error, file !== undefined);
  }
  let plugin = module.default;
  // ES module syntax compiled to CommonJS (tsc without "type": "module") puts the default export
  // at `exports.default`, which an import sees as `default.default`.
  const compiled = plugin as { __esModule?: unknown; default?: unknown } | undefined;
  if (compiled?.__esModule === true && compiled.default !== undefined) plugin = compiled.default;
  if (plugin === undefined) {
    const named = Object.keys(module).filter((key) => key !== "default");
    throw new LoomPluginError(
      `plugin ${ref}: the module has no default export (export default a plugin definition, or ` +
        `a list of them${named.length ? `; it exports ${named.join(", ")}` : ""})`,
    );
  }
  return plugin;
}

/** Why a plugin module failed to load, with what to do about it. */
function loadError(ref: string, error: unknown, byPath: boolean): LoomPluginError {
  const code = (error as { code?: string }).code;
  // Deno's module errors come coloured, over several lines, with a hint for Deno projects
  // (`deno add …`): Loom's messages are one plain line with Loom's own advice.
  // deno-lint-ignore no-control-regex
  const message = errorMessage(error).replace(/\x1b\[[0-9;]*m/g, "").split("\n")[0].trim();
  /** Whether the message quotes `name` (or a path in it) as what could not be found. */
  const missing = (name: string) =>
    new RegExp(`['"]${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}(/[^'"]*)?['"]`).test(message);
  const hint = TS_IN_NODE_MODULES.test(`${code} ${message}`)
    ? ` (Node and Deno load no TypeScript from node_modules: the plugin's package must ship JavaScript, compiled by tsc for instance${
      byPath ? "" : ", or give the plugin's .ts file by a path outside node_modules"
    })`
    : code === "ERR_UNKNOWN_FILE_EXTENSION"
    ? " (TypeScript plugins need Node 22.18 or later, or Deno)"
    : !byPath && missing(ref)
    ? ` (it is not installed: \`npm i ${ref}\` in the job file's folder or above it; Loom looks in the node_modules folders above the job file, then beside Loom itself)`
    : missing("loom-batch")
    ? " (install loom-batch beside the plugin, or import Loom only as types there)"
    : "";
  return new LoomPluginError(`plugin ${ref}: cannot load it: ${message}${hint}`, { cause: error });
}

/**
 * Finds and imports third-party plugin modules named in a job's `plugins:` list or in
 * `LOOM_PLUGINS`: a path (relative to the job file) or an installed package name, looked up in
 * the `node_modules` folders above the job file, as Node would, then from Loom's own location.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
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

/** Imports a plugin module and returns its default export. */
export async function importPluginModule(ref: string, baseDir: string): Promise<unknown> {
  let specifier: string;
  if (ref.startsWith("file:")) specifier = ref;
  else if (isPathReference(ref)) {
    const file = resolve(baseDir, ref);
    if (!existsSync(file)) throw new LoomPluginError(`plugin ${ref}: no such file ${file}`);
    specifier = pathToFileURL(file).href;
  } else {
    const entry = resolvePackage(ref, baseDir);
    specifier = entry ? pathToFileURL(entry).href : ref;
  }
  let module: { default?: unknown };
  try {
    module = await import(specifier);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = errorMessage(error);
    const hint = code === "ERR_UNKNOWN_FILE_EXTENSION"
      ? " (TypeScript plugins need Node 22.18 or later, or Deno)"
      : /loom-batch/.test(message)
      ? ' (a plugin file should import Loom only as types, `import type { … } from "loom-batch"`, or install loom-batch beside it)'
      : "";
    throw new LoomPluginError(`plugin ${ref}: cannot load it: ${message}${hint}`, { cause: error });
  }
  if (module.default === undefined) {
    throw new LoomPluginError(
      `plugin ${ref}: the module has no default export (export default a plugin definition)`,
    );
  }
  return module.default;
}

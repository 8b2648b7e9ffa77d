/**
 * The npm build: type-checks and compiles the TypeScript sources to `dist/` with tsc
 * (`rewriteRelativeImportExtensions` turns `./x.ts` imports into `./x.js`), laid out as dnt would
 * lay it out. Run with `npm run build` (Node 22+) or `deno run -A scripts/build.ts`.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(root, "tsconfig.build.json")], {
  stdio: "inherit",
  cwd: root,
});
chmodSync(join(root, "dist", "cli", "main.js"), 0o755);
// loom view's page is plain HTML, JS and CSS read beside its module: tsc does not carry them.
cpSync(join(root, "cli", "view", "assets"), join(root, "dist", "cli", "view", "assets"), {
  recursive: true,
});
console.log("built dist/");

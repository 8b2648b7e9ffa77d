/**
 * The release's version checks (see release/version.ts).
 *
 *   node scripts/release-version.ts check TAG   exits 1, saying why, when TAG cannot be released
 *                                               (publish.yml runs it with the pushed tag)
 *   node scripts/release-version.ts sync        copies package.json's version into deno.json
 *                                               (npm's `version` script: `npm version` runs it)
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { releaseProblems, withVersion } from "./release/version.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const denoFile = join(root, "deno.json");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const [command, tag] = process.argv.slice(2);

if (command === "check" && tag) {
  const deno = existsSync(denoFile) ? JSON.parse(readFileSync(denoFile, "utf8")) : undefined;
  const repository = process.env.GITHUB_REPOSITORY;
  const problems = releaseProblems(tag, pkg, deno, repository);
  for (const p of problems) console.error(`release-version: ${p}`);
  if (problems.length) process.exit(1);
  // Run by hand, the publishing repository is unknown; a package.json that names none is refused
  // by the workflow whatever it is, so say so now rather than after the tag is pushed.
  if (!repository && !pkg.repository) {
    console.error(
      "release-version: warning: package.json names no repository, and the publish workflow " +
        'refuses it: set "repository": {"type": "git", "url": "git+https://github.com/OWNER/REPO.git"} ' +
        "(or run this check with GITHUB_REPOSITORY=OWNER/REPO to check it as the workflow does)",
    );
  }
  console.log(`release-version: ${tag} is package.json's version ${pkg.version}`);
} else if (command === "sync" && !tag) {
  writeFileSync(denoFile, withVersion(readFileSync(denoFile, "utf8"), pkg.version));
  console.log(`release-version: deno.json's version is now ${pkg.version}`);
} else {
  console.error("usage: node scripts/release-version.ts check TAG | sync");
  process.exit(2);
}

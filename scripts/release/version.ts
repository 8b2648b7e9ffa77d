/**
 * What a release checks before it publishes: the pushed tag is `v` + package.json's version,
 * deno.json carries the same version, and package.json names the GitHub repository that publishes
 * (npm refuses a provenance statement whose repository differs from package.json's).
 * @module
 */

/** The fields of package.json and deno.json a release reads. */
export interface Manifest {
  version?: string;
  repository?: string | { url?: string };
}

/**
 * The reasons `tag` cannot be released, each saying what to do; empty when it can. `repository`
 * is GitHub's `owner/name` of the publishing repository (unchecked when not given).
 */
export function releaseProblems(
  tag: string,
  pkg: Manifest,
  deno: Manifest | undefined,
  repository?: string,
): string[] {
  const problems: string[] = [];
  const version = pkg.version;
  if (!version) return ["package.json has no version: set one with `npm version X.Y.Z`"];
  if (tag !== `v${version}`) {
    problems.push(
      `tag ${tag} does not match package.json's version ${version}: push the tag v${version}, ` +
        "or bump the version with `npm version` (it commits and tags)",
    );
  }
  if (deno?.version !== undefined && deno.version !== version) {
    problems.push(
      `deno.json's version ${deno.version} is not package.json's ${version}: run ` +
        "`node scripts/release-version.ts sync` and commit deno.json (`npm version` does both)",
    );
  }
  if (repository) {
    const url = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
    const named = url?.replace(/^git\+/, "").replace(/\.git$/, "").replace(/^github:/, "");
    const ok = named === repository || named?.endsWith(`github.com/${repository}`);
    if (!ok) {
      problems.push(
        `package.json's repository (${url ?? "none"}) is not github.com/${repository}: set ` +
          `"repository": {"type": "git", "url": "git+https://github.com/${repository}.git"}, ` +
          "which npm's provenance requires",
      );
    }
  }
  return problems;
}

/** deno.json's text with `version` set, the rest as it was (2-space JSON, as deno fmt writes). */
export function withVersion(denoJson: string, version: string): string {
  return `${JSON.stringify({ ...JSON.parse(denoJson), version }, null, 2)}\n`;
}

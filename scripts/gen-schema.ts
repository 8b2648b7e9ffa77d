/**
 * Writes `jobs/loom.schema.json` from the job schema (`core/job/schema.ts`).
 *
 *   deno run -A scripts/gen-schema.ts           # write it
 *   deno run -A scripts/gen-schema.ts --check   # exit 1 if the checked-in file is stale
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { jobJsonSchemaText } from "../core/job/json-schema.ts";

const file = fileURLToPath(new URL("../jobs/loom.schema.json", import.meta.url));
const text = jobJsonSchemaText();

if (process.argv.slice(2).includes("--check")) {
  const current = await readFile(file, "utf8").catch(() => undefined);
  if (current !== text) {
    console.error(
      `${file} is ${current === undefined ? "missing" : "out of date"} with core/job/schema.ts; ` +
        "run: deno run -A scripts/gen-schema.ts",
    );
    process.exit(1);
  }
  console.log(`${file} is up to date`);
} else {
  await writeFile(file, text);
  console.log(`wrote ${file}`);
}

import { join } from "node:path";
import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { openSqliteStorage } from "./mod.ts";

let n = 0;
storageConformance({
  name: "sqlite",
  create: () => openSqliteStorage({ file: join(tempDir("loom-sqlite-"), `state-${n++}.db`) }),
  reopen: (first) => openSqliteStorage({ file: first.location }),
});

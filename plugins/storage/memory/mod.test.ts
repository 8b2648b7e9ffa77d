import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { createMemoryStorage } from "./mod.ts";

storageConformance({ name: "memory", create: createMemoryStorage });

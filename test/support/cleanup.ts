// A setup file (vitest.config.ts): its afterAll runs once every test file is done.
import { afterAll } from "vitest";
import { removeTempDirs } from "./tmp.js";

afterAll(removeTempDirs);

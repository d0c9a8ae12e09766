import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly", performance: "readonly" } },
  },
  {
    // apps that run inside test and example containers, and the launcher: CommonJS on plain Node
    files: ["**/*.cjs", "bin/reroll.js"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", __dirname: "readonly", process: "readonly", setTimeout: "readonly", URL: "readonly", Buffer: "readonly", console: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error"],
    },
  },
  {
    // Only the edges print: the CLI entry, renderers, benchmarks and examples.
    files: ["src/cli/**", "bin/**", "bench/**", "examples/**", "test/support/**", "scripts/**"],
    rules: { "no-console": "off" },
  },
);

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RerollError } from "../../src/core/errors.js";
import { interpolateString, parseDotEnv } from "../../src/core/spec/interpolate.js";
import { parseBytes, parseDuration, shellWords } from "../../src/core/spec/units.js";
import { specHash } from "../../src/rollout/container-spec.js";
import { loadSpec } from "../../src/spec/load.js";
import { tempDir } from "../support/tmp.js";

describe("Compose interpolation", () => {
  const vars = { SET: "value", EMPTY: "" };
  it.each([
    ["$SET", "value"],
    ["${SET}", "value"],
    ["${UNSET:-fallback}", "fallback"],
    ["${EMPTY:-fallback}", "fallback"],
    ["${EMPTY-fallback}", ""],
    ["${UNSET-fallback}", "fallback"],
    ["${SET:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET:-${SET}-x}", "value-x"],
    ["$$SET and $${SET}", "$SET and ${SET}"],
    ["price: 5$", "price: 5$"],
    ["$UNSET", ""],
  ])("%s → %s", (text, expected) => {
    expect(interpolateString(text, vars)).toBe(expected);
  });

  it.each([
    ["${UNSET:?needs a value}", /required variable UNSET is missing a value: needs a value/],
    ["${EMPTY:?}", /required variable EMPTY/],
    ["${SET", /missing "}"/],
    ["${}", /invalid interpolation/],
  ])("%s is an error", (text, message) => {
    expect(() => interpolateString(text, vars)).toThrow(message);
  });
});

describe(".env files", () => {
  it("reads KEY=VALUE, export, quotes, comments and earlier keys", () => {
    const text = ['# comment', "export A=1", "B = two words # trailing comment", "C='single $A'", 'D="line\\nnext ${A}"', "E=${A}${B}", "EMPTY=", ""].join("\n");
    expect(parseDotEnv(text, {}, ".env")).toEqual({ A: "1", B: "two words", C: "single $A", D: "line\nnext 1", E: "1two words", EMPTY: "" });
  });
  it("names the line of a malformed entry", () => {
    expect(() => parseDotEnv("A=1\nthis is not\n", {}, "/x/.env")).toThrow(/\/x\/\.env, line 2/);
  });
});

describe("units", () => {
  it.each([
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["1.5h", 5_400_000],
    ["0", 0],
    [3, 3000],
  ])("duration %s = %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(["10", "ten seconds", "1x", ""])("duration %s is refused", (text) => expect(parseDuration(text)).toBeUndefined());
  it("sizes and shell words", () => {
    expect(parseBytes("512m")).toBe(512 * 1024 ** 2);
    expect(parseBytes("1g")).toBe(1024 ** 3);
    expect(shellWords(`sh -c "echo 'a b' \\"q\\"" done`)).toEqual(["sh", "-c", `echo 'a b' "q"`, "done"]);
    expect(shellWords(`echo "open`)).toBeUndefined();
  });
});

describe("loading a Compose file", () => {
  const load = async (yaml: string, extra: Record<string, string> = {}, env: Record<string, string> = {}) => {
    const dir = await tempDir("reroll-spec-");
    await writeFile(join(dir, "compose.yaml"), yaml);
    for (const [name, content] of Object.entries(extra)) await writeFile(join(dir, name), content);
    return { dir, spec: () => loadSpec({ cwd: dir, env }) };
  };

  it("resolves build, defaults and reroll's safe rollout defaults", async () => {
    const { dir, spec } = await load(
      [
        "name: shop",
        "x-reroll: { history: 3 }",
        "services:",
        "  web:",
        "    build: { context: ./web, dockerfile: Dockerfile.prod, args: [A=1, FROM_ENV], target: prod }",
        "    ports: ['127.0.0.1:8080:80', '9090:90/udp', { target: 443, published: 8443, host_ip: '::1' }, '127.0.0.1::81']",
        "    volumes: ['data:/var/lib/data:ro', './conf:/etc/conf', '/cache']",
        "    healthcheck: { test: 'wget -q -O- http://localhost/health', interval: 2s, retries: 3 }",
        "    deploy: { replicas: 3, update_config: { parallelism: 2, monitor: 1s } }",
        "    env_file: app.env",
        "    environment: { B: '2' }",
        "    command: httpd -f -p 80",
        "volumes:",
        "  data: {}",
        "",
      ].join("\n"),
      { "app.env": "A=from-file\nB=from-file\n" },
      { FROM_ENV: "shell" },
    );
    const s = await spec();
    expect(s.project).toBe("shop");
    expect(s.reroll.history).toBe(3);
    const web = s.services[0]!;
    expect(web.image).toBe("shop-web");
    expect(web.build).toEqual({ context: join(dir, "web"), dockerfile: join(dir, "web", "Dockerfile.prod"), args: { A: "1", FROM_ENV: "shell" }, target: "prod", labels: {} });
    expect(web.ports).toEqual([
      { hostIp: "127.0.0.1", published: 8080, target: 80, protocol: "tcp" },
      { hostIp: "", published: 9090, target: 90, protocol: "udp" },
      { hostIp: "::1", published: 8443, target: 443, protocol: "tcp" },
      { hostIp: "127.0.0.1", published: undefined, target: 81, protocol: "tcp" },
    ]);
    expect(web.volumes).toEqual([
      { type: "volume", source: "data", target: "/var/lib/data", readOnly: true, nocopy: false },
      { type: "bind", source: join(dir, "conf"), target: "/etc/conf", readOnly: false, createHostPath: true },
      { type: "anonymous", target: "/cache", readOnly: false },
    ]);
    expect(web.healthcheck).toMatchObject({ test: ["CMD-SHELL", "wget -q -O- http://localhost/health"], intervalMs: 2000, retries: 3 });
    expect(web.environment).toEqual({ A: "from-file", B: "2" });
    expect(web.command).toEqual(["httpd", "-f", "-p", "80"]);
    expect(web.restart).toBe("unless-stopped");
    expect(web.deploy.replicas).toBe(3);
    expect(web.deploy.update).toEqual({ parallelism: 2, delayMs: 0, failureAction: "rollback", monitorMs: 1000, maxFailureRatio: 0, order: "start-first" });
    expect(s.volumes["data"]?.name).toBe("shop_data");
  });

  it("names volumes as Compose does: the project's prefixed, an external one by its key, name: over both", async () => {
    const { spec } = await load(
      [
        "name: shop",
        "services:",
        "  web:",
        "    image: web:1",
        "    volumes: ['data:/a', 'pgdata:/b', 'shared:/c']",
        "volumes:",
        "  data: {}",
        "  pgdata: { external: true }",
        "  shared: { external: true, name: team-shared }",
        "",
      ].join("\n"),
    );
    const s = await spec();
    expect(Object.fromEntries(Object.entries(s.volumes).map(([k, v]) => [k, [v.name, v.external]]))).toEqual({
      data: ["shop_data", false],
      pgdata: ["pgdata", true],
      shared: ["team-shared", true],
    });
  });

  it("reports every problem at once, each with its path", async () => {
    const { spec } = await load(
      [
        "services:",
        "  web:",
        "    container_name: web",
        "    deploy: { replicas: -1, update_config: { failure_action: explode, max_failure_ratio: 2 } }",
        "    healthcheck: { interval: soon }",
        "    volumes: ['undeclared:/data']",
        "    depends_on: [db]",
        "  api: {}",
        "",
      ].join("\n"),
    );
    const error = (await spec().catch((e: unknown) => e)) as RerollError;
    expect(error).toBeInstanceOf(RerollError);
    expect(error.code).toBe("E_SPEC_INVALID");
    expect(error.problems).toEqual([
      "services.web.container_name: a fixed name cannot be shared by replicas; reroll names containers itself",
      "services.web: needs `build:` or `image:`",
      'services.web.volumes[0]: names the volume "undeclared", which is not declared under top-level volumes:',
      'services.web.healthcheck.interval: must be a duration such as 10s, 1m30s or 500ms, got "soon"',
      "services.web.deploy.update_config.max_failure_ratio: must be a number from 0 to 1, got 2",
      'services.web.deploy.update_config.failure_action: must be one of rollback, pause, continue, got "explode"',
      "services.web.deploy.replicas: must be a whole number ≥ 0, got -1",
      "services.api: needs `build:` or `image:`",
      'services.web.depends_on: names "db", which is not a service in this file',
    ]);
  });

  it("logging, extra_hosts, init, cap_add and cap_drop, in each form Compose takes; a replica's hash without them is what it was before they existed", async () => {
    const { spec } = await load(
      [
        "name: shop",
        "services:",
        "  web:",
        "    image: busybox",
        "    logging: { driver: json-file, options: { max-size: 10m, max-file: 3 } }",
        '    extra_hosts: ["db:10.0.0.5", "v6=::1", "bracket=[fe80::1]"]',
        "    init: true",
        "    cap_add: [NET_ADMIN]",
        "    cap_drop: [ALL]",
        "  api:",
        "    image: busybox",
        "    logging: { options: { max-size: 1m } }",
        "    extra_hosts: { cache: 10.0.0.6 }",
        "  plain:",
        "    image: busybox",
        "",
      ].join("\n"),
    );
    const loaded = await spec();
    const [web, api, plain] = loaded.services;
    expect(web).toMatchObject({
      logging: { driver: "json-file", options: { "max-size": "10m", "max-file": "3" } },
      extraHosts: ["db:10.0.0.5", "v6:::1", "bracket:fe80::1"],
      init: true,
      capAdd: ["NET_ADMIN"],
      capDrop: ["ALL"],
    });
    expect(api).toMatchObject({ logging: { driver: undefined, options: { "max-size": "1m" } }, extraHosts: ["cache:10.0.0.6"], init: undefined });
    expect(plain).toMatchObject({ logging: undefined, extraHosts: undefined, init: undefined, capAdd: undefined, capDrop: undefined });
    // replicas deployed before these keys existed must not all look changed after an upgrade
    expect(specHash(loaded, plain!, undefined)).toBe("ed827527f681534b");
    expect(specHash(loaded, web!, undefined)).not.toBe(specHash(loaded, { ...web!, init: false }, undefined));

    const bad = await load("services:\n  web:\n    image: busybox\n    extra_hosts: [nohost, 'h:']\n    logging: { driver: 3x, level: debug }\n    init: maybe\n");
    await expect(bad.spec()).rejects.toMatchObject({
      problems: expect.arrayContaining([
        'services.web.extra_hosts[0]: must be HOST:IP or HOST=IP, got "nohost"',
        'services.web.extra_hosts[1]: must be HOST:IP or HOST=IP, got "h"',
        "services.web.logging.level: not supported by reroll (remove it, or see README for the keys reroll honours)",
        expect.stringMatching(/^services\.web\.init: must be/),
      ]),
    });
  });

  it("reroll's settings in the wrong place say where they go", async () => {
    const { spec } = await load(
      ["x-reroll: { proxy: { drain_timeout: 5s } }", "services:", "  web:", "    image: busybox", "    x-reroll: { history: 2 }", ""].join("\n"),
    );
    await expect(spec()).rejects.toMatchObject({
      problems: [
        "x-reroll.proxy: set per service: move it under services.NAME.x-reroll.proxy",
        "services.web.x-reroll.history: set once for the project: move it to the top level of the file (x-reroll: { history: N }), which keeps N revisions of every service",
      ],
    });
  });

  it("the door's settings: TLS needs HTTP, a certificate and plain ports the service publishes; trusted proxies are addresses", async () => {
    const { dir, spec } = await load(
      [
        "services:",
        "  web:",
        "    image: busybox",
        '    ports: ["443:80", "80:80"]',
        "    x-reroll: { proxy: { tls: { certificate: ./site.pem, redirect_from: [80] }, trusted_proxies: [10.0.0.0/8], image: haproxy:3.2, threads: 4 } }",
        "",
      ].join("\n"),
    );
    const proxy = (await spec()).services[0]!.proxy;
    expect(proxy.tls).toEqual({ certificate: join(dir, "site.pem"), redirectFrom: [80] });
    expect(proxy.trustedProxies).toEqual(["10.0.0.0/8"]);
    expect(proxy.image).toBe("haproxy:3.2");
    expect(proxy.threads).toBe(4);
    const bad = await load(
      [
        "services:",
        "  web:",
        "    image: busybox",
        '    ports: ["443:80"]',
        "    x-reroll: { proxy: { mode: tcp, tls: { redirect_from: [8080, 443] }, trusted_proxies: [everyone], threads: 0 } }",
        "",
      ].join("\n"),
    );
    await expect(bad.spec()).rejects.toMatchObject({
      problems: [
        "services.web.x-reroll.proxy.tls.certificate: is required: a PEM file with the certificate and its private key",
        "services.web.x-reroll.proxy.tls: needs mode: http (a TCP door forwards bytes as they come; terminate TLS in the service instead)",
        "services.web.x-reroll.proxy.trusted_proxies[0]: must be an IP address or CIDR, got \"everyone\"",
        "services.web.x-reroll.proxy.threads: must be a whole number from 1 to 64 (HAProxy's threads), got 0",
      ],
    });
    const redirects = await load(["services:", "  web:", "    image: busybox", '    ports: ["443:80"]', "    x-reroll: { proxy: { tls: { certificate: ./site.pem, redirect_from: [8080, 443] } } }", ""].join("\n"));
    await expect(redirects.spec()).rejects.toMatchObject({
      problems: [
        "services.web.x-reroll.proxy.tls.redirect_from[0]: 8080 is not one of the service's published ports",
        "services.web.x-reroll.proxy.tls.redirect_from: leaves no port to serve HTTPS on: list only the plain ports that redirect",
      ],
    });
  });

  it("an invalid project name is reported, not silently changed", async () => {
    const { spec } = await load("name: My Shop\nservices:\n  a:\n    image: busybox\n");
    await expect(spec()).rejects.toMatchObject({ problems: [expect.stringMatching(/^name: "My Shop" is not a valid project name/)] });
  });

  it("YAML anchors and merge keys work, as in Compose", async () => {
    const { spec } = await load(["x-base: &base", "  image: busybox:1.36", "  restart: always", "services:", "  a:", "    <<: *base", "  b:", "    <<: *base", "    restart: 'no'", ""].join("\n"));
    const s = await spec();
    expect(s.services.map((x) => [x.name, x.image, x.restart])).toEqual([
      ["a", "busybox:1.36", "always"],
      ["b", "busybox:1.36", "no"],
    ]);
  });

  it("invalid YAML is E_SPEC_YAML", async () => {
    const { spec } = await load("services:\n  web: [unclosed\n");
    await expect(spec()).rejects.toMatchObject({ code: "E_SPEC_YAML" });
  });
});

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { replicaOfServer, serverName } from "../../src/proxy/door.js";
import { HOLD_SCRIPT, renderDoorConfig, type DoorSettings } from "../../src/proxy/haproxy-config.js";
import { needsReload } from "../../src/proxy/manage.js";
import { parseServerStats, parseServersState } from "../../src/proxy/runtime.js";

/** The door's HAProxy configuration and what reroll reads back from its runtime API, without Docker. */

const settings: DoorSettings = {
  project: "shop",
  service: "web",
  mode: "http",
  targetPort: 8080,
  healthPath: "/health",
  probeIntervalMs: 100,
  probeTimeoutMs: 1_000,
  drainTimeoutMs: 10_000,
  trustedProxies: [],
  threads: 1,
};

/** HAProxy's own check of a configuration (`haproxy -c`), with the paths it names made here. */
function haproxyAccepts(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), "reroll-door-"));
  writeFileSync(join(dir, "verify.acl"), "");
  writeFileSync(join(dir, "hold.map"), "");
  writeFileSync(join(dir, "hold.lua"), HOLD_SCRIPT.replaceAll("/usr/local/etc/haproxy", dir));
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config.replaceAll("/usr/local/etc/haproxy", dir).replace("/var/lib/haproxy/reroll.sock", join(dir, "sock")));
  return execFileSync("haproxy", ["-c", "-f", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

describe("the door's configuration", () => {
  it("is valid to HAProxy, in HTTP and TCP mode, with servers routed and probing, by address and by a name Docker's DNS resolves", () => {
    const servers = [
      { name: "shop-web-r1-1.0123456789ab", host: "172.18.0.2", state: "routed" as const },
      { name: "shop-web-r1-3.0123456789cd", host: "0123456789cd", state: "routed" as const },
      { name: "shop-web-r2-1.ba9876543210", host: "172.18.0.3", state: "probing" as const },
    ];
    expect(haproxyAccepts(renderDoorConfig(settings, servers))).toMatch(/valid/);
    expect(haproxyAccepts(renderDoorConfig({ ...settings, mode: "tcp", healthPath: undefined, trustedProxies: ["10.0.0.0/8"] }, servers))).toMatch(/valid/);
    expect(haproxyAccepts(renderDoorConfig({ ...settings, trustedProxies: ["10.0.0.0/8", "192.168.1.7"], threads: 4 }, []))).toMatch(/valid/);
  });

  it("needs a reload when its settings changed or a server line was written by an older reroll, not when only the servers differ", () => {
    const servers = [
      { name: "shop-web-r1-1.0123456789ab", host: "0123456789ab", state: "routed" as const },
      { name: "shop-web-r1-2.ba9876543210", host: "ba9876543210", state: "probing" as const },
    ];
    // read back from the door, the file has no final newline
    const written = renderDoorConfig(settings, servers).trimEnd();
    expect(needsReload(written, settings)).toBe(false);
    expect(needsReload(renderDoorConfig(settings, servers.slice(1)).trimEnd(), settings)).toBe(false);
    expect(needsReload(written, { ...settings, trustedProxies: ["10.0.0.0/8"] })).toBe(true);
    // an older reroll's servers keep no idle connection: a reload makes them anew from the file
    expect(needsReload(written.replaceAll(" pool-max-conn -1 pool-purge-delay 5s", ""), settings)).toBe(true);
    // servers by address, as an older reroll wrote them: a restarted door would not follow a replica Docker restarted elsewhere
    expect(needsReload(renderDoorConfig(settings, [{ name: "shop-web-r1-1.0123456789ab", host: "172.18.0.2", state: "routed" }]).trimEnd(), settings)).toBe(true);
  });

  it("is valid to HAProxy with TLS (a real certificate) and as a plain port's redirect to HTTPS", () => {
    const dir = mkdtempSync(join(tmpdir(), "reroll-door-cert-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t", "-keyout", join(dir, "k"), "-out", join(dir, "c")], { stdio: "ignore" });
    writeFileSync(join(dir, "site.pem"), execFileSync("cat", [join(dir, "c"), join(dir, "k")]));
    const tls = renderDoorConfig({ ...settings, tls: { file: join(dir, "site.pem"), digest: "sha256:0123" } }, []);
    expect(tls).toContain(`ssl crt ${join(dir, "site.pem")} alpn h2,http/1.1`);
    expect(haproxyAccepts(tls)).toMatch(/valid/);
    const redirect = renderDoorConfig({ ...settings, redirectToPort: 8443 }, []);
    expect(redirect).toContain("http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri] code 301");
    expect(haproxyAccepts(redirect)).toMatch(/valid/);
    expect(renderDoorConfig({ ...settings, redirectToPort: 443 }, [])).toContain("http-request redirect scheme https code 301");
  });

  it("takes the forwarded scheme and host from the door, not the client, unless the client is a trusted proxy", () => {
    const plain = renderDoorConfig(settings, []);
    expect(plain).toContain("  http-request del-header x-forwarded-proto\n");
    expect(plain).toContain("  http-request del-header x-forwarded-host\n");
    expect(plain).toContain("  option forwardfor\n");
    const trusted = renderDoorConfig({ ...settings, trustedProxies: ["10.0.0.0/8"] }, []);
    expect(trusted).toContain("  acl from_trusted_proxy src 10.0.0.0/8\n");
    expect(trusted).toContain("  http-request del-header x-forwarded-proto unless from_trusted_proxy\n");
  });

  it("retries only connections that failed, routes a probing server with no weight, and answers 503 with Retry-After", () => {
    const config = renderDoorConfig(settings, [
      { name: "a", host: "172.18.0.2", state: "routed" },
      { name: "b", host: "172.18.0.3", state: "probing" },
    ]);
    expect(config).toContain("  retry-on conn-failure\n");
    expect(config).not.toMatch(/retry-on .*(empty-response|response-timeout|50\d)/);
    expect(config).toMatch(/server a 172\.18\.0\.2:8080 check .* weight 100 /);
    expect(config).toMatch(/server b 172\.18\.0\.3:8080 check .* weight 0 /);
    expect(config).toMatch(/http-error status 503 .* hdr retry-after 1/);
    expect(config).toContain("  balance leastconn\n");
  });
});

describe("the runtime API's answers", () => {
  it("reads servers' states and sessions", () => {
    const states = [
      "1",
      "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port",
      "3 replicas 1 shop-web-r1-1.0123456789ab 172.18.0.2 2 0 100 100 60 15 3 2 6 0 0 0 - 8080 - 0 0 - - 0",
      "3 replicas 2 shop-web-r2-1.ba9876543210 172.18.0.3 2 8 0 0 1 1 0 0 2 0 0 0 - 8080 - 0 0 - - 0",
      "",
    ].join("\n");
    expect(parseServersState(states)).toEqual([
      { name: "shop-web-r1-1.0123456789ab", address: "172.18.0.2", operational: 2, admin: 0, weight: 100, checkResult: 3 },
      { name: "shop-web-r2-1.ba9876543210", address: "172.18.0.3", operational: 2, admin: 8, weight: 0, checkResult: 0 },
    ]);
    const stats = ["# pxname,svname,qcur,qmax,scur,smax,status,check_status", "door,FRONTEND,,,3,9,OPEN,", "replicas,a,0,0,2,5,UP,L7OK", "replicas,b,1,1,0,0,DOWN,L7STS", "replicas,BACKEND,0,0,2,5,UP,"].join("\n");
    expect(parseServerStats(stats, "replicas")).toEqual([
      { name: "a", sessions: 2, queued: 0, status: "UP", check: "L7OK" },
      { name: "b", sessions: 0, queued: 1, status: "DOWN", check: "L7STS" },
    ]);
  });

  it("names a server by its replica and short id, and reads the replica back", () => {
    const name = serverName({ id: "0123456789abcdef0123", name: "shop-web-r2-1" });
    expect(name).toBe("shop-web-r2-1.0123456789ab");
    expect(replicaOfServer(name)).toBe("shop-web-r2-1");
  });
});

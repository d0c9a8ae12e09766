import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { RerollError } from "../core/errors.js";
import type { PortSpec, ServiceSpec } from "../core/spec/types.js";
import { CERTS_DIR, type DoorSettings } from "./haproxy-config.js";

/**
 * TLS at the door: the user's certificate (a PEM with its private key), checked before any
 * door changes, kept in a Docker volume the door mounts (never in a label or the output),
 * and which published ports serve HTTPS or redirect to it.
 */

export interface Certificate {
  readonly pem: string;
  /** identifies this certificate in the door's configuration: a new one is a reload */
  readonly digest: string;
}

export const CERTIFICATE_FILE = "site.pem";

/** The volume holding a door's certificate. */
export function certificateVolume(door: string): string {
  return `${door}-certs`;
}

/** The service's certificate, read and checked (a certificate and the private key that matches it); undefined without TLS. */
export async function readCertificate(service: ServiceSpec): Promise<Certificate | undefined> {
  const tls = service.proxy.tls;
  if (tls === undefined) return undefined;
  const where = `services.${service.name}.x-reroll.proxy.tls.certificate`;
  let pem: string;
  try {
    pem = await readFile(tls.certificate, "utf8");
  } catch (error) {
    throw new RerollError("E_TLS_CERTIFICATE", `${where}: ${tls.certificate} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: "Name a PEM file with the certificate (its chain after it) and the private key.",
    });
  }
  try {
    const certificate = new X509Certificate(pem);
    const key = createPrivateKey(pem);
    if (!certificate.checkPrivateKey(key)) throw new Error("its private key is not the certificate's");
  } catch (error) {
    // the message is the crypto library's, about the file's structure: it never holds key material
    throw new RerollError("E_TLS_CERTIFICATE", `${where}: ${tls.certificate} is not a certificate with its private key: ${(error as Error).message}.`, {
      hint: "The file must hold the certificate (BEGIN CERTIFICATE), its chain, and the matching private key (BEGIN PRIVATE KEY), as HAProxy's `crt` takes them.",
    });
  }
  return { pem, digest: `sha256:${createHash("sha256").update(pem).digest("hex").slice(0, 16)}` };
}

function redirects(service: ServiceSpec, port: PortSpec): boolean {
  return port.published !== undefined && (service.proxy.tls?.redirectFrom ?? []).includes(port.published);
}

/** Whether this port's door serves HTTPS (and so mounts a certificate volume). */
export function servesTls(service: ServiceSpec, port: PortSpec): boolean {
  return service.proxy.tls !== undefined && !redirects(service, port);
}

/** What a door of this port does with TLS: serve HTTPS, redirect plain HTTP to the service's HTTPS port, or neither. */
export function portTls(service: ServiceSpec, port: PortSpec, certificate: Certificate | undefined): Pick<DoorSettings, "tls" | "redirectToPort"> {
  const tls = service.proxy.tls;
  if (tls === undefined || certificate === undefined) return {};
  if (redirects(service, port)) {
    const https = service.ports.find((p) => p.published === undefined || !tls.redirectFrom.includes(p.published));
    return { redirectToPort: https?.published ?? 443 };
  }
  return { tls: { file: `${CERTS_DIR}/${CERTIFICATE_FILE}`, digest: certificate.digest } };
}

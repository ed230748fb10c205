/* The local certificate authority of the web feature (issue 17): one CA per
 * state directory and domain, and a leaf certificate per container made on
 * the fly and kept in memory.
 *
 * The CA: an ECDSA P-256 key (ca/loophole-ca.key, 0600, readable by root
 * only) and a self-signed certificate (ca/loophole-ca.crt, 0644) whose
 * subject says it is loophole's and this machine's, valid for years, CA:TRUE
 * with pathlen 0 and keyCertSign, and always name-constrained (permitted DNS
 * subtree) to the domain, so trusting it can never vouch for another name.
 * Made on first use; a CA for another domain is replaced (a change of
 * --domain makes a new CA). A key or certificate that cannot be read or
 * parsed is moved aside (".broken-<unix time>") and a new CA made, unless a
 * CA of this directory was ever trusted (trusted_before): then it is a
 * problem that says how to recover, and no CA is used.
 *
 * Leaves: ECDSA P-256, EKU serverAuth, valid 825 days at most (what macOS
 * accepts), subjectAltName every name given and its wildcard ("*.name"),
 * signed by the CA. Made on the loop (a P-256 key and a signature take well
 * under a millisecond), cached by key and made again when the names or the
 * ALPN choice change or the leaf is within 30 days of its end.
 *
 * Uses OpenSSL's X509 API only (nothing shells out to openssl), synchronous
 * file I/O of two small files at open. No libuv here. */
#ifndef LOOPHOLE_WEB_CA_H
#define LOOPHOLE_WEB_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ssl_ctx_st;
typedef struct web_ca web_ca;

/* What a server context offers in ALPN: "http/1.1" only (default: loophole
 * relays bytes without parsing HTTP, and the app behind may speak only
 * HTTP/1.1), or "h2" then "http/1.1" (the loophole.http2=on label, for apps
 * that speak h2c). */
enum { WEB_ALPN_HTTP1 = 0, WEB_ALPN_H2 = 1 };

/* The files under dir (the state directory). */
#define WEB_CA_SUBDIR "ca"
#define WEB_CA_KEY_FILE "loophole-ca.key"
#define WEB_CA_CERT_FILE "loophole-ca.crt"

/* Opens the CA in dir/ca for domain, making it (and dir/ca, 0700) when there
 * is none. 0 with *out; or a negative errno with err set to one sentence (the
 * problem status shows: what is wrong and how to recover) and *out NULL. */
int web_ca_open(const char *dir, const char *domain, bool trusted_before, web_ca **out, char *err,
                size_t errlen);
void web_ca_free(web_ca *ca);

/* Whether the CA was made by this open (a new CA: any earlier trust is of
 * the old one). */
bool web_ca_created(const web_ca *ca);
/* The certificate's path (dir/ca/loophole-ca.crt) and PEM text. */
const char *web_ca_cert_path(const web_ca *ca);
const char *web_ca_cert_pem(const web_ca *ca);
/* SHA-256 of the certificate's DER, as "AB:CD:..." (95 characters + NUL). */
#define WEB_CA_FINGERPRINT_LEN 96
const char *web_ca_fingerprint(const web_ca *ca);
/* The certificate's notAfter, Unix seconds. */
int64_t web_ca_not_after(const web_ca *ca);

/* The server context for a set of DNS names (n >= 1; names[0] is the
 * certificate's subject CN): TLS 1.2 and 1.3, the leaf for those names and
 * their wildcards, ALPN as alpn says. Cached under key (a container id, or
 * any other stable key). Borrowed: valid until web_ca_forget(key), a call for
 * key with other names, or web_ca_free; a caller that keeps it longer takes a
 * reference (SSL_CTX_up_ref). NULL with err set when it cannot be made. */
struct ssl_ctx_st *web_ca_server_ctx(web_ca *ca, const char *key, const char *const *names,
                                     size_t n, int alpn, char *err, size_t errlen);
/* Drops key's cached context (the container is gone). */
void web_ca_forget(web_ca *ca, const char *key);

#endif

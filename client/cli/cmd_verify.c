/*
 * cmd_verify.c - parley verify: check saved updates offline.
 *
 * A file holds the bytes of one Delivery or SignedUpdate, or lines of
 * text: `parley sub --raw` lines (base64 of the signed bytes) or `parley
 * sub --json` lines (which carry signer, signed_body and signature). A
 * JSON line passes only if its visible fields are the ones that were
 * signed, so an edited headline cannot ride on a valid signature.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest input verify reads (a file of lines, or standard input). */
#define S_VERIFY_MAX (64 * 1024 * 1024)

static void
s_help(void)
{
    printf("usage: parley verify [--keyring FILE] FILE...\n"
           "\n"
           "Check saved updates offline. FILE (- for standard input) holds:\n"
           "  the bytes of a Delivery (as the feed and replay carry it) or of a\n"
           "    SignedUpdate (as a publisher sends it);\n"
           "  lines of parley sub --raw (base64 of the signed bytes, one update\n"
           "    per line);\n"
           "  lines of parley sub --json (or of a web hook's json body): the\n"
           "    signature is checked over signed_body, and every field of the\n"
           "    line must be what was signed.\n"
           "One line is printed per update:\n"
           "  FILE: OK #SEQ signer KEYID (NAME): HEADLINE\n"
           "  FILE: CODE: why\n"
           "(FILE:LINE for lines; #SEQ where the input has one, which the\n"
           "daemon gave and nobody signed; NAME when the keyring knows the\n"
           "key). Without --keyring the signature is checked against the key\n"
           "named in the update; with it, the signer must also be listed and\n"
           "allowed to publish that update.\n"
           "\n"
           "Options:\n"
           "      --keyring FILE  trusted signers, as parleyd's keyring\n"
           "  -q, --quiet         print only failures\n"
           "  -h, --help          print this help\n"
           "\n"
           "Exit status: 0 all good, 1 usage error, 2 an update failed the\n"
           "check, 4 keyring file problem, 5 a file could not be read.\n");
}

/* Read a whole file, or standard input for "-". 0 or -errno / -EFBIG. */
static int
s_read_all(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                    : open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 64 * 1024;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    *len = 0;
    *buf = malloc(cap + 1);
    int rc = *buf == NULL ? -ENOMEM : 0;
    while (rc == 0) {
        if (*len == cap) {
            if (cap >= S_VERIFY_MAX) {
                rc = -EFBIG;
                break;
            }
            uint8_t *grown = realloc(*buf, cap * 2 + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            *buf = grown;
            cap *= 2;
        }
        ssize_t r = read(fd, *buf + *len, cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break;
        else
            *len += (size_t)r;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    (*buf)[*len] = '\0';
    return 0;
}

/* Print "label: OK [#SEQ ]signer ID[ (NAME)]: HEADLINE". */
static int
s_print_ok(const cli_common_t *c, const char *label, const parley_update_t *u,
           const uint8_t *signer, const char *name, int have_seq, uint64_t seq)
{
    if (c->quiet)
        return 0;
    int named = name != NULL && name[0] != '\0';
    cli_output_t o = { .mode = CLI_OUT_FORMAT,
                       .format = named ? "signer %i (%N): %h" : "signer %i: %h" };
    printf("%s: OK ", label);
    if (have_seq)
        printf("#%llu ", (unsigned long long)seq);
    return cli_print_signed(stdout, &o, u, signer, name) < 0 ? CLI_EXIT_OTHER
                                                             : 0;
}

/* Print "label: CODE: why" and return CLI_EXIT_REJECTED. */
static int
s_print_bad(const char *label, const char *code, const char *why)
{
    printf("%s: %s: %s\n", label, code, why);
    return CLI_EXIT_REJECTED;
}

/*
 * Check the bytes of a Delivery or a SignedUpdate. Returns 0 (good),
 * CLI_EXIT_REJECTED or CLI_EXIT_OTHER.
 */
static int
s_verify_bytes(const cli_common_t *c, const parley_keyring_t *ring,
               const char *label, const uint8_t *buf, size_t len)
{
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    parley_delivery_t *d = parley_delivery_new();
    parley_update_t *u = parley_update_new();
    int rc;
    if (d == NULL || u == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_OTHER;
        goto out;
    }
    /* A Delivery first: its field types differ from a SignedUpdate's, so
     * one is never mistaken for the other. */
    int is_delivery = 1;
    rc = parley_delivery_decode(ring, buf, len, d);
    if (rc == PARLEY_EMALFORMED) {
        int rc2 = parley_verify(ring, buf, len, u, signer);
        if (rc2 != PARLEY_EMALFORMED) {
            is_delivery = 0;
            rc = rc2;
        }
    }
    if (rc < 0) {
        rc = s_print_bad(label, parley_error_name(rc), parley_strerror(rc));
        goto out;
    }
    if (is_delivery)
        rc = s_print_ok(c, label, parley_delivery_update(d),
                        parley_delivery_signer(d),
                        parley_delivery_signer_name(d), 1,
                        parley_delivery_seq(d));
    else
        rc = s_print_ok(c, label, u, signer,
                        ring != NULL ? parley_keyring_name(ring, signer) : NULL,
                        0, 0);
out:
    parley_delivery_destroy(&d);
    parley_update_destroy(&u);
    return rc;
}

/* Decode a base64 string of exactly `want` bytes (0: any) into a heap
 * buffer. Returns the length, or -1. */
static long
s_unbase64(const char *b64, size_t want, uint8_t **out)
{
    size_t n = strlen(b64);
    size_t len = 0;
    *out = malloc(n + 1);
    if (*out == NULL
        || sodium_base642bin(*out, n + 1, b64, n, NULL, &len, NULL,
                             sodium_base64_VARIANT_ORIGINAL)
               != 0
        || (want != 0 && len != want) || len == 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return (long)len;
}

/* Append a length-delimited protobuf field to buf. */
static size_t
s_field(uint8_t *buf, unsigned field, const uint8_t *data, size_t len)
{
    size_t n = 0;
    buf[n++] = (uint8_t)(field << 3 | 2);
    for (size_t v = len;; v >>= 7) {
        if (v < 0x80) {
            buf[n++] = (uint8_t)v;
            break;
        }
        buf[n++] = (uint8_t)(v | 0x80);
    }
    memcpy(buf + n, data, len);
    return n + len;
}

/* Name the first field where two updates differ, or NULL. */
static const char *
s_differs(const parley_update_t *a, const parley_update_t *b)
{
    if (strcmp(parley_update_negotiation(a), parley_update_negotiation(b)) != 0)
        return "negotiation";
    if (parley_update_party_count(a) != parley_update_party_count(b))
        return "parties";
    for (size_t i = 0; i < parley_update_party_count(a); i++)
        if (strcmp(parley_update_party(a, i), parley_update_party(b, i)) != 0)
            return "parties";
    if (parley_update_phase(a) != parley_update_phase(b))
        return "phase";
    if (parley_update_status(a) != parley_update_status(b))
        return "status";
    if (parley_update_kind(a) != parley_update_kind(b))
        return "kind";
    if (parley_update_reference_count(a) != parley_update_reference_count(b))
        return "references";
    for (size_t i = 0; i < parley_update_reference_count(a); i++)
        if (parley_update_reference(a, i) != parley_update_reference(b, i))
            return "references";
    if (strcmp(parley_update_headline(a), parley_update_headline(b)) != 0)
        return "headline";
    if (strcmp(parley_update_body(a), parley_update_body(b)) != 0)
        return "body";
    if (strcmp(parley_update_location(a), parley_update_location(b)) != 0)
        return "location";
    if (parley_update_scheduled_at(a) != parley_update_scheduled_at(b))
        return "scheduled_at";
    if (parley_update_issued_at(a) != parley_update_issued_at(b))
        return "issued_at";
    if (parley_update_expires_at(a) != parley_update_expires_at(b))
        return "expires_at";
    if (parley_update_signer_seq(a) != parley_update_signer_seq(b))
        return "signer_seq";
    return NULL;
}

/* Every field an update's JSON has, so that none may be left out. */
static const char *const s_json_fields[] = {
    "negotiation", "parties",      "phase",     "status",     "kind",
    "references",  "headline",     "body",      "location",   "scheduled_at",
    "issued_at",   "expires_at",   "signer_seq",
};

/*
 * Check one --json line: rebuild the SignedUpdate from signer, signed_body
 * and signature, verify it, and compare what the line shows with what
 * was signed. Returns 0, CLI_EXIT_REJECTED or CLI_EXIT_OTHER.
 */
static int
s_verify_json(const cli_common_t *c, const parley_keyring_t *ring,
              const char *label, const char *line)
{
    json_error_t jerr;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    uint8_t *body = NULL, *sig = NULL, *pk = NULL, *env = NULL;
    uint8_t signer[PARLEY_PUBLICKEY_BYTES];
    parley_update_t *u = parley_update_new(), *shown = parley_update_new();
    char err[512] = "";
    int rc;
    if (u == NULL || shown == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_OTHER;
        goto out;
    }
    if (o == NULL || !json_is_object(o)) {
        rc = s_print_bad(label, "malformed", "not a JSON object");
        goto out;
    }
    const char *b_body = json_string_value(json_object_get(o, "signed_body"));
    const char *b_sig = json_string_value(json_object_get(o, "signature"));
    const char *b_pk = json_string_value(json_object_get(o, "signer"));
    long blen;
    if (b_body == NULL || b_sig == NULL || b_pk == NULL) {
        rc = s_print_bad(label, "malformed",
                         "no signer, signed_body and signature (JSON of "
                         "parley before 1.0 cannot be verified)");
        goto out;
    }
    if ((blen = s_unbase64(b_body, 0, &body)) < 0
        || s_unbase64(b_sig, PARLEY_SIGNATURE_BYTES, &sig) < 0
        || s_unbase64(b_pk, PARLEY_PUBLICKEY_BYTES, &pk) < 0) {
        rc = s_print_bad(label, "malformed",
                         "signer, signed_body or signature is not base64 of "
                         "the right length");
        goto out;
    }
    /* SignedUpdate: body = 1, signer = 2, signature = 3 (length-delimited) */
    if ((env = malloc((size_t)blen + 16 + PARLEY_PUBLICKEY_BYTES
                      + PARLEY_SIGNATURE_BYTES))
        == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_OTHER;
        goto out;
    }
    size_t len = s_field(env, 1, body, (size_t)blen);
    len += s_field(env + len, 2, pk, PARLEY_PUBLICKEY_BYTES);
    len += s_field(env + len, 3, sig, PARLEY_SIGNATURE_BYTES);
    if ((rc = parley_verify(ring, env, len, u, signer)) < 0) {
        rc = s_print_bad(label, parley_error_name(rc), parley_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < sizeof(s_json_fields) / sizeof(s_json_fields[0]);
         i++)
        if (json_object_get(o, s_json_fields[i]) == NULL) {
            snprintf(err, sizeof(err), "the line has no %s", s_json_fields[i]);
            rc = s_print_bad(label, "altered", err);
            goto out;
        }
    if (parley_update_from_json(line, shown, err, sizeof(err)) != 0) {
        rc = s_print_bad(label, "malformed", err);
        goto out;
    }
    const char *field = s_differs(shown, u);
    if (field != NULL) {
        snprintf(err, sizeof(err),
                 "the line's %s is not what was signed (signed_body)", field);
        rc = s_print_bad(label, "altered", err);
        goto out;
    }
    json_t *jseq = json_object_get(o, "seq");
    rc = s_print_ok(c, label, u, signer,
                    ring != NULL ? parley_keyring_name(ring, signer) : NULL,
                    json_is_integer(jseq),
                    json_is_integer(jseq) ? (uint64_t)json_integer_value(jseq)
                                          : 0);
out:
    json_decref(o);
    free(body);
    free(sig);
    free(pk);
    free(env);
    parley_update_destroy(&u);
    parley_update_destroy(&shown);
    return rc;
}

/* 1 if the text is made of base64 lines (and blank ones) only. */
static int
s_is_base64_text(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = buf[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'
              || ch == '=' || ch == '\n' || ch == '\r'))
            return 0;
    }
    return len > 0;
}

/* Check each non-blank line of text; the worst result. */
static int
s_verify_lines(const cli_common_t *c, const parley_keyring_t *ring,
               const char *path, char *text, int json)
{
    int status = 0;
    unsigned long lineno = 0;
    for (char *line = text; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n > 0) {
            char label[4200];
            int rc;
            snprintf(label, sizeof(label), "%s:%lu", path, lineno);
            if (json) {
                rc = s_verify_json(c, ring, label, line);
            } else {
                uint8_t *bytes = NULL;
                long blen = s_unbase64(line, 0, &bytes);
                rc = blen < 0 ? s_print_bad(label, "malformed", "not base64")
                              : s_verify_bytes(c, ring, label, bytes,
                                               (size_t)blen);
                free(bytes);
            }
            if (rc == CLI_EXIT_OTHER || (rc != 0 && status == 0))
                status = rc;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return status;
}

/* Check one FILE; returns 0 (good), CLI_EXIT_REJECTED or CLI_EXIT_OTHER. */
static int
s_verify_one(const cli_common_t *c, const parley_keyring_t *ring,
             const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = s_read_all(path, &buf, &len);
    if (rc < 0) {
        if (rc == -EISDIR)
            cli_error("%s is a directory; give the files in it", path);
        else
            cli_error("%s: %s", path, strerror(-rc));
        return CLI_EXIT_OTHER;
    }
    size_t lead = 0;
    while (lead < len && (buf[lead] == ' ' || buf[lead] == '\n'
                          || buf[lead] == '\r' || buf[lead] == '\t'))
        lead++;
    if (lead < len && buf[lead] == '{' && memchr(buf, '\0', len) == NULL)
        rc = s_verify_lines(c, ring, path, (char *)buf, 1);
    else if (s_is_base64_text(buf, len))
        rc = s_verify_lines(c, ring, path, (char *)buf, 0);
    else
        rc = s_verify_bytes(c, ring, path, buf, len);
    free(buf);
    return rc;
}

int
cmd_verify(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "keyring", required_argument, NULL, CLI_OPT_KEYRING },
        { NULL, 0, NULL, 0 },
    };
    const char *keyring_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT, longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (opt == 'h') {
            s_help();
            return CLI_EXIT_OK;
        }
        if (opt == CLI_OPT_KEYRING) {
            keyring_path = optarg;
            continue;
        }
        return cli_option_error("verify", opt, argv);
    }
    if (optind >= argc)
        return cli_usage_error("verify", "name at least one FILE (- for "
                                         "standard input)");
    int status = cli_common_ready(c);
    if (status != 0)
        return status;
    parley_keyring_t *ring = NULL;
    status = cli_load_keyring(cli_keyring_path(c, keyring_path), &ring);
    if (status != 0)
        return status;
    for (int i = optind; i < argc; i++) {
        int rc = s_verify_one(c, ring, argv[i]);
        /* a read error outranks a failed check: it says less */
        if (rc == CLI_EXIT_OTHER || (rc != 0 && status == 0))
            status = rc;
    }
    parley_keyring_destroy(&ring);
    if (fflush(stdout) != 0 && status == 0)
        status = CLI_EXIT_OTHER;
    return status;
}

/*
 * cmd_keygen.c - parley keygen: a new signing key pair, or with --curve a
 * CurveZMQ key pair for transport security.
 */
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

enum { S_OPT_COMMENT = CLI_OPT_FIRST_FREE, S_OPT_FORCE, S_OPT_CURVE };

static void
s_help(void)
{
    printf("usage: parley keygen [--curve] -o PATH [--comment TEXT] "
           "[--force]\n"
           "\n"
           "Make an Ed25519 signing key pair: the secret key in PATH (mode\n"
           "0600) and the public key in PATH.pub (the base64 key, a space and\n"
           "the comment). Prints the key id and a keyring line for parleyd:\n"
           "\n"
           "  key id: 3f2a9c0d4b5e6f71\n"
           "  NAME PUBKEY negotiations=* parties=* phases=*\n"
           "\n"
           "NAME is the file name of PATH up to its first dot, made a slug.\n"
           "Narrow the lists before adding the line to the keyring.\n"
           "\n"
           "With --curve, make a CurveZMQ key pair instead, for a daemon\n"
           "with curve on: PATH (mode 0600) holds both halves in ZeroMQ's\n"
           "Z85 form, PATH.pub the public key and the comment. Give the\n"
           "daemon its own PATH as curve_secret_key and clients its PATH.pub\n"
           "(--curve-server-key); give a client its PATH (--curve-key) and\n"
           "add the printed line to the daemon's curve_clients:\n"
           "\n"
           "  public key: 38jU5+8!I8@tCloJ5SNJ>^9*IFQXUWB/z})jTwo)\n"
           "  NAME Z85KEY topics=*\n"
           "\n"
           "Narrow topics=* to prefixes such as topics=party/egypt/ to limit\n"
           "what that client may read.\n"
           "\n"
           "Options:\n"
           "  -o, --output PATH   where to write the secret key (required)\n"
           "      --curve         make a CURVE key pair (transport security)\n"
           "      --comment TEXT  comment for PATH.pub (default: NAME)\n"
           "      --force         replace existing files (new files are\n"
           "                      renamed over them; another user's are\n"
           "                      left alone)\n"
           "  -q, --quiet         print only the keyring line\n"
           "  -v, --verbose       also say which files were written\n"
           "  -h, --help          print this help\n"
           "\n"
           "Exit status: 0 written, 1 usage error, 4 the files could not be\n"
           "written (for example PATH exists and --force was not given).\n");
}

/*
 * Derive a keyring name from a key path: its file name up to the first
 * dot, lowercased, other characters turned into '-', at most a slug long.
 */
static void
s_name_from_path(const char *path, char out[PARLEY_SLUG_MAX + 1])
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = 0;
    for (const char *p = base; *p != '\0' && *p != '.' && n < PARLEY_SLUG_MAX;
         p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            ch = '-';
        if (n == 0 && ch == '-')
            continue; /* a slug starts with a letter or digit */
        out[n++] = ch;
    }
    out[n] = '\0';
    if (n == 0)
        strcpy(out, "signer");
}

/* Say why the key files could not be written. */
static void
s_write_error(const char *path, int rc)
{
    if (rc == -EEXIST)
        cli_error("%s or %s.pub exists; use --force to replace it", path,
                  path);
    else if (rc == -EPERM)
        cli_error("%s or %s.pub belongs to another user; not replacing it",
                  path, path);
    else
        cli_error("%s: %s", path, parley_strerror(rc));
}

/* keygen --curve: write the CURVE pair and print the allow-list line. */
static int
s_curve_keygen(const cli_common_t *c, const char *path, const char *name,
               const char *comment, int force)
{
    char pub[PARLEY_CURVE_KEY_CHARS + 1];
    int rc = parley_curve_keygen(path, comment, force, pub);
    if (rc < 0) {
        s_write_error(path, rc);
        return CLI_EXIT_KEY;
    }
    cli_info(c, "wrote %s (CURVE secret, mode 0600) and %s.pub", path, path);
    if (!c->quiet)
        printf("public key: %s\n", pub);
    printf("%s %s topics=*\n", name, pub);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

int
cmd_keygen(cli_common_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG,
        { "output", required_argument, NULL, 'o' },
        { "comment", required_argument, NULL, S_OPT_COMMENT },
        { "force", no_argument, NULL, S_OPT_FORCE },
        { "curve", no_argument, NULL, S_OPT_CURVE },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL, *comment = NULL;
    int force = 0, curve = 0, opt;

    while ((opt = getopt_long(argc, argv, ":" CLI_COMMON_SHORT "o:", longopts,
                              NULL)) != -1) {
        int rc = cli_common_option(c, opt, optarg);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            continue;
        switch (opt) {
        case 'h':
            s_help();
            return CLI_EXIT_OK;
        case 'o':
            path = optarg;
            break;
        case S_OPT_COMMENT:
            comment = optarg;
            break;
        case S_OPT_FORCE:
            force = 1;
            break;
        case S_OPT_CURVE:
            curve = 1;
            break;
        default:
            return cli_option_error("keygen", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("keygen", "unexpected argument \"%s\"",
                               argv[optind]);
    if (path == NULL || *path == '\0')
        return cli_usage_error("keygen", "-o PATH is required");

    char name[PARLEY_SLUG_MAX + 1];
    s_name_from_path(path, name);
    if (comment == NULL)
        comment = name;

    /* Refuse before writing anything, so that an existing PATH.pub does
     * not leave a fresh secret key beside a stale public one. */
    if (!force) {
        char pubpath[4096];
        struct stat st;
        snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
        if (lstat(path, &st) == 0 || lstat(pubpath, &st) == 0) {
            cli_error("%s or %s.pub exists; use --force to replace it", path,
                      path);
            return CLI_EXIT_KEY;
        }
    }

    if (curve)
        return s_curve_keygen(c, path, name, comment, force);

    parley_key_t *key = parley_key_generate();
    if (key == NULL) {
        cli_error("cannot make a key: %s", parley_strerror(-errno));
        return CLI_EXIT_OTHER;
    }
    int rc = parley_key_save(key, path, comment, force);
    if (rc < 0) {
        parley_key_destroy(&key);
        s_write_error(path, rc);
        return CLI_EXIT_KEY;
    }

    uint8_t pk[PARLEY_PUBLICKEY_BYTES];
    char id[PARLEY_KEYID_CHARS + 1], b64[45];
    parley_key_public(key, pk);
    parley_key_destroy(&key);
    parley_key_id(pk, id);
    parley_pubkey_format(pk, b64);
    cli_info(c, "wrote %s (secret, mode 0600) and %s.pub", path, path);
    if (!c->quiet)
        printf("key id: %s\n", id);
    printf("%s %s negotiations=* parties=* phases=*\n", name, b64);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_OTHER;
}

/* argon2-verify: exits 0 when the password on stdin matches the Argon2 PHC string given as the
 * only argument, 1 when it does not, 2 when the string is not a valid PHC string. The
 * Vaultwarden stand-in checks an admin token with it, because the box gives Vaultwarden an
 * Argon2id hash of the token (busybox has no Argon2). Linked statically against Debian's
 * libargon2 so it runs in a FROM-scratch image. */
#include <argon2.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char pw[4096];
    size_t n;
    argon2_type type;
    if (argc != 2) {
        fprintf(stderr, "usage: argon2-verify PHC-STRING < password\n");
        return 2;
    }
    n = fread(pw, 1, sizeof pw, stdin);
    if (strncmp(argv[1], "$argon2id$", 10) == 0) type = Argon2_id;
    else if (strncmp(argv[1], "$argon2i$", 9) == 0) type = Argon2_i;
    else if (strncmp(argv[1], "$argon2d$", 9) == 0) type = Argon2_d;
    else return 2;
    switch (argon2_verify(argv[1], pw, n, type)) {
    case ARGON2_OK: return 0;
    case ARGON2_VERIFY_MISMATCH: return 1;
    default: return 2;
    }
}

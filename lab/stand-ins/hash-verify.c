/* hash-verify: exits 0 when the password on stdin matches the hash given as the only argument,
 * 1 when it does not, 2 when the hash is not one it knows. Two kinds, because the box hands
 * apps hashes instead of secrets: an Argon2 PHC string (Vaultwarden's admin token) and a bcrypt
 * hash (Portainer's --admin-password). Busybox has neither, so the stand-ins check with this,
 * linked statically against Debian's libargon2 and libcrypt (libxcrypt knows bcrypt) to run in
 * a FROM-scratch image. */
#include <argon2.h>
#include <crypt.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char pw[4096];
    size_t n;
    argon2_type type;
    if (argc != 2) {
        fprintf(stderr, "usage: hash-verify HASH < password\n");
        return 2;
    }
    n = fread(pw, 1, sizeof pw - 1, stdin);
    pw[n] = '\0';
    if (strncmp(argv[1], "$2", 2) == 0) {
        /* crypt() with the hash as its setting re-hashes with the same salt and cost. */
        struct crypt_data data;
        const char *again;
        memset(&data, 0, sizeof data);
        again = crypt_r(pw, argv[1], &data);
        if (again == NULL || again[0] == '*') return 2;
        return strcmp(again, argv[1]) == 0 ? 0 : 1;
    }
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

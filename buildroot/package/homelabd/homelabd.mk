################################################################################
#
# homelabd
#
################################################################################

# The source archive is made from this repository by `make -f image.mk <board>`
# (git archive + cargo vendor into VENDOR/) and placed in the download directory,
# so nothing is fetched: the vendored tarball is used as it is.
HOMELABD_VERSION = $(call qstrip,$(BR2_PACKAGE_HOMELABD_VERSION))
HOMELABD_SITE = $(BR2_DL_DIR)/homelabd
HOMELABD_SITE_METHOD = file
HOMELABD_LICENSE = AGPL-3.0-only
HOMELABD_SUBDIR = daemon
HOMELABD_CARGO_INSTALL_OPTS = --bin homelabd
# Buildroot sets every cargo package's release profile from the global options (16 codegen
# units, -O2, no LTO), which overrides the workspace's. homelabd keeps its own (the values of
# [profile.release] in Cargo.toml; change both together): 14 MB instead of 26 MB on x86_64.
HOMELABD_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s
# Made locally for each build: there is no fixed hash to check it against.
BR_NO_CHECK_HASH_FOR += $(HOMELABD_SOURCE)

# The daemon's own unprivileged user, created at build time (the root
# filesystem is read-only at run time).
define HOMELABD_USERS
	homelab -1 homelab -1 * /data/homelab - - Homelab daemon
endef

$(eval $(cargo-package))

# Homelab images.  make -f image.mk help
#
# Production images are built with Buildroot from the BR2_EXTERNAL tree in buildroot/ (needs
# internet access for Buildroot and its sources). The stand-in image is built from Debian
# packages with the same overlay/, partition layout and A/B boot logic, so CI can boot it.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(TOP)/Cargo.toml | head -1)
OUT ?= $(TOP)/out
CACHE ?= /var/cache/homelab-image
# Rules below delete folders under $(CACHE) and $(OUT): an empty value would aim them at /.
ifeq ($(strip $(CACHE)),)
$(error CACHE is empty: give it a folder for cached downloads and images, e.g. CACHE=/var/cache/homelab-image)
endif
ifeq ($(strip $(OUT)),)
$(error OUT is empty: give it a folder for build output, e.g. OUT=$(TOP)/out)
endif

# Buildroot, pinned: a release tag and the commit it must resolve to (the checksum check).
BUILDROOT_VERSION ?= 2026.02.3
BUILDROOT_COMMIT ?= 679b9ead7620bbf193620d1ebf56f53c1764d37a
BUILDROOT_GIT ?= https://gitlab.com/buildroot.org/buildroot.git
BUILDROOT_DIR ?= $(CACHE)/buildroot-$(BUILDROOT_VERSION)
BOARDS := pc_x86_64 rpi4_64 generic_aarch64

.PHONY: help test-image boot-test ota-test keys bundle $(BOARDS) buildroot-source homelabd-source check-buildroot-tree offline-pc_x86_64 offline-boot-test offline-ota-test

# Update signing. Release builds name their files (never committed):
#   HOMELAB_KEYRING       CA certificate(s) baked into images; bundles must be signed under it
#   HOMELAB_SIGNING_CERT  certificate bundles are signed with
#   HOMELAB_SIGNING_KEY   its private key (a file; or a PKCS#11 URI RAUC understands)
# Without them a DEVELOPMENT pair is made once in $(CACHE)/dev-keys and used, clearly labelled.
DEV_KEYS := $(CACHE)/dev-keys
KEYRING := $(or $(HOMELAB_KEYRING),$(DEV_KEYS)/ca.cert.pem)
SIGNING_CERT := $(or $(HOMELAB_SIGNING_CERT),$(DEV_KEYS)/signing.cert.pem)
SIGNING_KEY := $(or $(HOMELAB_SIGNING_KEY),$(DEV_KEYS)/signing.key.pem)
BOARD ?= standin_x86_64

help:
	@echo "Homelab images (version $(VERSION))"
	@echo
	@echo "Production images (Buildroot; needs internet access):"
	@echo "  make -f image.mk pc_x86_64         x86_64 PC, UEFI + GRUB"
	@echo "  make -f image.mk rpi4_64           Raspberry Pi 4/400/CM4, U-Boot"
	@echo "  make -f image.mk generic_aarch64   UEFI arm64 (also qemu 'virt')"
	@echo "      each leaves out/<board>/homelab-<board>-$(VERSION).img.xz and its .sha256"
	@echo "  make -f image.mk check-buildroot-tree   resolve every defconfig, lint the package"
	@echo "  make -f image.mk offline-pc_x86_64  the same without internet (Debian's toolchain and a"
	@echo "      local source mirror; see board/offline/sources): out/offline-pc_x86_64/"
	@echo "  make -f image.mk offline-boot-test | offline-ota-test   the image tests on that image"
	@echo
	@echo "CI stand-in (Debian packages, same overlay, layout and boot logic):"
	@echo "  make -f image.mk test-image        out/standin/homelab.img (cached by content)"
	@echo "  make -f image.mk boot-test         boot it under qemu and check it (see tests/image/boot-test.sh)"
	@echo "  make -f image.mk ota-test          install updates into it under qemu (see tests/image/ota-test.sh)"
	@echo
	@echo "Updates (signed RAUC bundles, verity format):"
	@echo "  make -f image.mk bundle BOARD=standin_x86_64|pc_x86_64|rpi4_64|generic_aarch64"
	@echo "      out/<board>/homelab-<board>-$(VERSION).raucb, signed with HOMELAB_SIGNING_CERT/KEY"
	@echo "      (default: a DEVELOPMENT key in $(DEV_KEYS), which release images never accept)"
	@echo
	@echo "Variables: OUT=$(OUT) CACHE=$(CACHE) BUILDROOT_VERSION=$(BUILDROOT_VERSION)"

# ---- CI stand-in -------------------------------------------------------------------------

STANDIN_INPUTS = $(TOP)/board/standin_x86_64/build.sh $(TOP)/board/pc_x86_64/genimage.cfg \
	$(TOP)/board/pc_x86_64/meta $(TOP)/board/pc_x86_64/overlay/etc/rauc/system.conf $(KEYRING) $(TOP)/board/common/grub-ab.cfg.in $(TOP)/board/common/render-grub.sh \
	$(shell find $(TOP)/overlay | LC_ALL=C sort)

# Cached by content: the overlay, the board files, the build script and the daemon binary.
# The development pair, made once; and the release rule: an image with a release keyring must
# not trust the development CA (so development bundles can never reach a user's box).
keys:
	@if [ -z "$(HOMELAB_KEYRING)" ]; then $(TOP)/board/common/dev-keys.sh $(DEV_KEYS); \
	 elif [ -f $(DEV_KEYS)/ca.cert.pem ] && grep -qF "$$(sed -n '2p' $(DEV_KEYS)/ca.cert.pem)" "$(HOMELAB_KEYRING)"; then \
	   echo "HOMELAB_KEYRING contains the development CA: refusing to build a release image with it"; exit 1; \
	 fi

test-image: keys
	@test -n "$(VERSION)" || { echo "no version found in Cargo.toml"; exit 1; }
	cd $(TOP) && cargo build --release --locked --bin homelabd
	@key=$$( (for f in $(STANDIN_INPUTS); do \
	           if [ -L "$$f" ]; then echo "$$f -> $$(readlink "$$f")"; elif [ -f "$$f" ]; then sha256sum "$$f"; else echo "$$f/"; fi; \
	         done; sha256sum $(TOP)/target/release/homelabd | cut -d' ' -f1; echo $(VERSION)) \
	         | sed "s|$(TOP)/||" | sha256sum | cut -c1-16); \
	dir=$(CACHE)/standin-$$key; \
	if [ -f $$dir/homelab.img ]; then echo "test-image: unchanged inputs, reusing $$dir"; \
	else rm -rf $(CACHE)/standin-*; \
	     STANDIN_CACHE=$(CACHE) $(TOP)/board/standin_x86_64/build.sh $$dir.tmp $(TOP)/target/release/homelabd $(VERSION) $(KEYRING) \
	     && mv $$dir.tmp $$dir; fi; \
	mkdir -p $(OUT)/standin; rm -f $(OUT)/standin/homelab*; \
	ln -sf $$dir/homelab.img $(OUT)/standin/homelab.img; \
	ln -sf $$dir/rootfs.squashfs $(OUT)/standin/rootfs.squashfs; \
	ln -sf $$dir/homelab-standin-$(VERSION).img.xz $(OUT)/standin/; \
	ln -sf $$dir/homelab-standin-$(VERSION).img.xz.sha256 $(OUT)/standin/; \
	ls -lL $(OUT)/standin

boot-test: test-image
	$(TOP)/tests/image/boot-test.sh $(OUT)/standin/homelab.img $(OUT)/standin/boot-test

# A signed bundle of a board's root filesystem at this version. The compatible string comes
# from the board's RAUC configuration, so a bundle only ever fits its own kind of box.
bundle: keys
	@case "$(BOARD)" in \
	  standin_x86_64) rootfs=$(OUT)/standin/rootfs.squashfs; compat=homelab-standin-x86_64; out=$(OUT)/standin ;; \
	  pc_x86_64|rpi4_64|generic_aarch64) rootfs=$(OUT)/$(BOARD)/images/rootfs.squashfs; out=$(OUT)/$(BOARD); \
	    compat=$$(sed -n 's/^compatible=//p' $(TOP)/board/$(BOARD)/overlay/etc/rauc/system.conf $(TOP)/board/pc_x86_64/overlay/etc/rauc/system.conf | head -1) ;; \
	  *) echo "unknown BOARD=$(BOARD)"; exit 1 ;; \
	esac; \
	test -f $$rootfs || { echo "no $$rootfs: build the image first (make -f image.mk $(if $(filter standin_x86_64,$(BOARD)),test-image,$(BOARD)))"; exit 1; }; \
	$(TOP)/board/common/make-bundle.sh $$rootfs $$compat $(VERSION) $(SIGNING_CERT) $(SIGNING_KEY) $$out/homelab-$(BOARD)-$(VERSION).raucb

# Updates under qemu: good, refused (unsigned, other key, tampered, other board), broken
# (falls back, data restored) and a power cut mid-install. Builds its test bundles itself.
ota-test: test-image
	$(TOP)/tests/image/ota-test.sh $(OUT)/standin $(OUT)/standin/ota-test $(VERSION) \
	  $(SIGNING_CERT) $(SIGNING_KEY)

# ---- Buildroot -------------------------------------------------------------------------

buildroot-source:
	@if [ ! -e $(BUILDROOT_DIR)/.git ]; then \
	  mkdir -p $(CACHE); \
	  git clone --depth 1 --branch $(BUILDROOT_VERSION) $(BUILDROOT_GIT) $(BUILDROOT_DIR).tmp; \
	  mv $(BUILDROOT_DIR).tmp $(BUILDROOT_DIR); \
	fi
	@got=$$(git -C $(BUILDROOT_DIR) rev-parse HEAD); \
	if [ "$$got" != "$(BUILDROOT_COMMIT)" ]; then \
	  echo "Buildroot $(BUILDROOT_VERSION) is $$got, expected $(BUILDROOT_COMMIT): refusing to build from it."; \
	  echo "(Delete $(BUILDROOT_DIR) to fetch it again, or set BUILDROOT_COMMIT for another pin.)"; exit 1; \
	fi

# homelabd's source for Buildroot: the committed tree with every crate vendored into VENDOR/,
# named as Buildroot names a vendored cargo archive (-cargo4: its format 4 in 2026.02)
# (Buildroot's cargo infrastructure uses such an archive as it is), in the download directory.
DL ?= $(CACHE)/dl
homelabd-source:
	rm -rf $(CACHE)/src && mkdir -p $(CACHE)/src/homelabd-$(VERSION) $(DL)/homelabd
	git -C $(TOP) archive HEAD Cargo.toml Cargo.lock daemon web recipes | tar -x -C $(CACHE)/src/homelabd-$(VERSION)
	cd $(CACHE)/src/homelabd-$(VERSION) && mkdir -p .cargo && cargo vendor --locked VENDOR > .cargo/config.toml
	tar -C $(CACHE)/src -czf $(DL)/homelabd/homelabd-$(VERSION)-cargo4.tar.gz homelabd-$(VERSION)

$(BOARDS): keys buildroot-source homelabd-source
	mkdir -p $(OUT)/$@
	$(MAKE) -C $(BUILDROOT_DIR) O=$(OUT)/$@ BR2_EXTERNAL=$(TOP)/buildroot homelab_$@_defconfig
	HOMELAB_KEYRING_PEM=$(KEYRING) HOMELAB_VERSION=$(VERSION) $(MAKE) -C $(BUILDROOT_DIR) O=$(OUT)/$@ BR2_DL_DIR=$(DL) HOMELABD_VERSION=$(VERSION)
	xz -T0 -6 -c $(OUT)/$@/images/homelab.img > $(OUT)/$@/homelab-$@-$(VERSION).img.xz
	cd $(OUT)/$@ && sha256sum homelab-$@-$(VERSION).img.xz > homelab-$@-$(VERSION).img.xz.sha256
	ls -l $(OUT)/$@/homelab-$@-$(VERSION).img.xz*

# ---- Offline Buildroot (no internet: sources from Debian's archive, PyPI and local git) ------
# The same board, built with Debian 12's compilers and C library and a local source mirror
# (board/offline/: toolchain.sh, mirror.sh, sources, local.mk.in). What differs from the
# production build is listed in board/offline/sources and local.mk.in.
# Buildroot itself: BUILDROOT_GIT=<a local copy of buildroot.git> when gitlab.com is not reachable.
OFFLINE ?= $(CACHE)/offline
OFFLINE_BOARDS := pc_x86_64

$(addprefix offline-,$(OFFLINE_BOARDS)): offline-%: keys buildroot-source
	@# Made again when toolchain.sh changes (the folder records which script made it).
	@made=$$(sha256sum $(TOP)/board/offline/toolchain.sh | cut -c1-16); \
	if [ "$$(cat $(OFFLINE)/toolchain-x86_64/.made-by 2>/dev/null)" != "$$made" ]; then \
	  $(TOP)/board/offline/toolchain.sh x86_64 $(OFFLINE)/toolchain-x86_64 && echo $$made > $(OFFLINE)/toolchain-x86_64/.made-by; \
	fi
	BUILDROOT_DIR=$(BUILDROOT_DIR) $(TOP)/board/offline/mirror.sh $(TOP)/board/offline/sources $(OFFLINE)
	$(MAKE) -f $(TOP)/image.mk homelabd-source DL=$(OFFLINE)/dl
	mkdir -p $(OUT)/offline-$*
	cat $(TOP)/buildroot/configs/homelab_$*_defconfig $(TOP)/board/offline/x86_64.config > $(OUT)/offline-$*/homelab_offline_defconfig
	HOMELAB_OFFLINE=$(OFFLINE) $(MAKE) -C $(BUILDROOT_DIR) O=$(OUT)/offline-$* BR2_EXTERNAL=$(TOP)/buildroot \
	  BR2_DEFCONFIG=$(OUT)/offline-$*/homelab_offline_defconfig defconfig
	HOMELAB_OFFLINE=$(OFFLINE) HOMELAB_KEYRING_PEM=$(KEYRING) HOMELAB_VERSION=$(VERSION) FORCE_UNSAFE_CONFIGURE=1 \
	  $(MAKE) -C $(BUILDROOT_DIR) O=$(OUT)/offline-$* BR2_DL_DIR=$(OFFLINE)/dl HOMELABD_VERSION=$(VERSION)
	xz -T0 -6 -c $(OUT)/offline-$*/images/homelab.img > $(OUT)/offline-$*/homelab-$*-$(VERSION).img.xz
	cd $(OUT)/offline-$* && sha256sum homelab-$*-$(VERSION).img.xz > homelab-$*-$(VERSION).img.xz.sha256
	ls -l $(OUT)/offline-$*/homelab-$*-$(VERSION).img.xz*

# The image tests of the stand-in, on the offline Buildroot image as it was last built (CI
# cannot build it, so CI runs them on the stand-in only).
offline-boot-test:
	$(TOP)/tests/image/boot-test.sh $(OUT)/offline-pc_x86_64/images/homelab.img $(OUT)/offline-pc_x86_64/boot-test

offline-ota-test: keys
	$(TOP)/tests/image/ota-test.sh $(OUT)/offline-pc_x86_64/images $(OUT)/offline-pc_x86_64/ota-test $(VERSION) \
	  $(SIGNING_CERT) $(SIGNING_KEY)

check-buildroot-tree: buildroot-source
	for b in $(BOARDS); do \
	  rm -rf $(OUT)/check-$$b; \
	  $(MAKE) -s -C $(BUILDROOT_DIR) O=$(OUT)/check-$$b BR2_EXTERNAL=$(TOP)/buildroot homelab_$${b}_defconfig; \
	  $(TOP)/buildroot/check-defconfig.sh $(TOP)/buildroot/configs/homelab_$${b}_defconfig $(OUT)/check-$$b/.config; \
	done
	cd $(TOP)/buildroot && $(BUILDROOT_DIR)/utils/check-package --br2-external $$(find . -type f -not -name '*.md' -not -name check-defconfig.sh)

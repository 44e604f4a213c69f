include $(sort $(wildcard $(BR2_EXTERNAL_HOMELAB_PATH)/package/*/*.mk))

# What changes in every release (homelabd, and os-release with the version) is written last in
# the root filesystem: an update that changes only the daemon then leaves every block before
# it as it was, and RAUC's adaptive updates (block-hash-index) reuse them. Written in between,
# they moved everything after them: 28 of 39 MB changed (35 MB with a longer version), not 5.
ROOTFS_SQUASHFS_ARGS += -sort $(BR2_EXTERNAL_HOMELAB_PATH)/../board/common/squashfs.sort

################################################################################
#
# restic
#
################################################################################

# The version devices run (backup::RESTIC_IMAGE): one repository format on both sides.
RESTIC_VERSION = 0.14.0
RESTIC_SITE = $(call github,restic,restic,v$(RESTIC_VERSION))
RESTIC_LICENSE = BSD-2-Clause
RESTIC_LICENSE_FILES = LICENSE
RESTIC_CPE_ID_VENDOR = restic
RESTIC_BUILD_TARGETS = cmd/restic
RESTIC_LDFLAGS = -X main.version=$(RESTIC_VERSION)

$(eval $(golang-package))

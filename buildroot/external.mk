include $(sort $(wildcard $(BR2_EXTERNAL_HOMELAB_PATH)/package/*/*.mk))

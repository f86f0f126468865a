"""Network manager: dnsmasq configuration, static-lease hosts file, iPXE boot tree and dnsmasq supervision."""

"""The demo merchants' webhook sink: verified notifications and what it remembers."""

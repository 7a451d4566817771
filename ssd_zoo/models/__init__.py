"""SSD model assembly and its parts."""

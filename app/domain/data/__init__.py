"""Reference data files (GB/T 2260 regions, code tables, plate prefixes), shipped as package data."""

"""Reading the files opinions arrive in: CSV in any common Chinese encoding, and XLSX."""

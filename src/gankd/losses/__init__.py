"""Loss terms shared by the methods."""

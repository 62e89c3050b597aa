"""HTTP fakes of remote APIs that cannot run here, served on 127.0.0.1."""

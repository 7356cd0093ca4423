"""The arithmetic sandbox: problems whose every solution step can be checked exactly."""

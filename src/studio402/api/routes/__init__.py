"""HTTP routes: parse, call a service, serialise. No payment or job logic lives here."""

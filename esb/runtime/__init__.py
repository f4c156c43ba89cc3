"""Running routes: workers that read, process, deliver, settle; the hub that starts and stops them."""

inkit-async demo

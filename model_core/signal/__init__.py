"""Signal processing on 16 kHz audio (numpy / scipy only): what a channel does to speech (telephone, noise,
reverb, codecs) and time-scaling. Used by training's augmentation and by the scorecard's robustness runs."""

"""The driver monitor (decide stage): eyes, blinks, PERCLOS, gaze on or off the road, per-driver
calibration, and the events a DMS is judged on (distraction, time-sharing, microsleep, drowsiness,
no face)."""
from pipeline.dms.monitor import DriverMonitor
from pipeline.dms.settings import DmsSettings, describe_settings, parse_settings

__all__ = ["DriverMonitor", "DmsSettings", "describe_settings", "parse_settings"]

"""Power and consoles: BMC records (IPMI, Redfish), parallel power control, SOL and console logs (issue 19).

pyghmi is imported only by `ipmi.py`, sushy only by `redfish.py`; nothing here runs inside perceus-bus.
"""

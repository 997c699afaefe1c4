# The GIMP side of the dialog test (run-dialog-test.sh), in GIMP 3 with its interface under Xvfb: opens
# photo.png in a display and runs plug-in-celgan interactively. The runner drives the dialog with synthetic
# keys and presses OK; then this script exports the result, signals "applied", and waits for the runner's
# single Ctrl+Z to bring back the original pixels exactly. Prints one "check:" line per check.
import os
import sys
import time

import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gimp, Gio, Gegl

D = os.environ['CELGAN_TEST_DIR']


def report(good, name, why=''):
    print('check: %s %s%s' % ('ok' if good else 'not ok', name, (' # ' + why) if why and not good else ''))
    sys.stdout.flush()


def pixels(layer):
    buffer = layer.get_buffer()
    return bytes(buffer.get(buffer.get_extent(), 1.0, "R'G'B' u8", Gegl.AbyssPolicy.NONE))


def touch(name):
    with open(os.path.join(D, name), 'w') as f:
        f.write('1\n')


try:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(D, 'photo.png')))
    layer = image.get_layers()[0]
    Gimp.Display.new(image)
    Gimp.displays_flush()
    original = pixels(layer)

    proc = Gimp.get_pdb().lookup_procedure('plug-in-celgan')
    config = proc.create_config()
    config.set_property('run-mode', Gimp.RunMode.INTERACTIVE)
    config.set_property('image', image)
    config.set_core_object_array('drawables', [layer])
    result = proc.run(config)
    status = result.index(0)
    report(status == Gimp.PDBStatusType.SUCCESS, '/gimp/dialog/ok_applies', str(status))

    applied = pixels(layer)
    report(applied != original, '/gimp/dialog/the_image_changed')
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image,
                   Gio.File.new_for_path(os.path.join(D, 'gimp-dialog-applied.png')), None)
    touch('applied')

    deadline = time.time() + 60
    restored = False
    while time.time() < deadline and not restored:
        time.sleep(0.5)
        restored = pixels(layer) == original
    report(restored, '/gimp/dialog/one_undo_restores_the_original_exactly')
except Exception as e:
    import traceback
    report(False, '/gimp/dialog/script', traceback.format_exc().replace('\n', ' | '))
touch('done')

# The GIMP side of the plug-in's batch tests, run by run-batch-tests.sh inside gimp-console-3.0 with
# python-fu-eval. It applies plug-in-celgan in several ways to the images in $CELGAN_TEST_DIR, exports the
# results there (the runner compares them with `celgan apply`), and prints one line per check:
#   check: ok NAME   |   check: not ok NAME # why
import os
import sys
import traceback

import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, Gio

D = os.environ['CELGAN_TEST_DIR']


def report(good, name, why=''):
    print('check: %s %s%s' % ('ok' if good else 'not ok', name, (' # ' + why) if why and not good else ''))
    sys.stdout.flush()


def load(name):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(D, name)))


def save(image, name):
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(os.path.join(D, name)), None)


def celgan(image, drawables, **args):
    """Runs plug-in-celgan; returns (status, error message)."""
    proc = Gimp.get_pdb().lookup_procedure('plug-in-celgan')
    config = proc.create_config()
    config.set_property('run-mode', Gimp.RunMode.NONINTERACTIVE)
    config.set_property('image', image)
    config.set_core_object_array('drawables', drawables)
    for key, value in args.items():
        key = key.replace('_', '-')
        if key in ('model-file', 'reference'):
            value = Gio.File.new_for_path(os.path.join(D, value))
        config.set_property(key, value)
    result = proc.run(config)
    status = result.index(0)
    message = result.index(1) if result.length() > 1 else ''
    return status, message


def apply_and_save(name, source, output, **args):
    """Loads source, applies, exports output; checks the status."""
    image = load(source)
    status, message = celgan(image, image.get_layers()[:1], **args)
    report(status == Gimp.PDBStatusType.SUCCESS, name, '%s %s' % (status, message))
    save(image, output)
    return image


def done(*images):
    for image in images:
        image.delete()


def check(name, fn):
    try:
        fn()
    except Exception:
        report(False, name, traceback.format_exc().replace('\n', ' | '))


def registered():
    proc = Gimp.get_pdb().lookup_procedure('plug-in-celgan')
    report(proc is not None, '/gimp/registered')
    report(proc.get_image_types() == 'RGB*, GRAY*', '/gimp/registered/image_types', proc.get_image_types())
    report('<Image>/Filters/Artistic' in proc.get_menu_paths(), '/gimp/registered/menu_path',
           str(proc.get_menu_paths()))
    label = proc.get_menu_label()
    report('CelGAN' in label, '/gimp/registered/menu_label', label)
    names = [a.name for a in proc.get_arguments()]
    want = ['model', 'model-file', 'strength', 'keep-colors', 'reference', 'reference-layer', 'tile-size', 'device']
    report(all(w in names for w in want), '/gimp/registered/arguments', str(names))


def rgb():
    done(apply_and_save('/gimp/apply/rgb', 'rgb.png', 'gimp-rgb.png', model='fast'))


def strength():
    done(apply_and_save('/gimp/apply/strength_keep_colors', 'rgb.png', 'gimp-strength.png', model='fast',
                        strength=0.5, keep_colors=True))


def selection():
    image = load('rgb.png')
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 40, 30, 100, 80)
    status, message = celgan(image, image.get_layers()[:1], model='fast')
    report(status == Gimp.PDBStatusType.SUCCESS, '/gimp/apply/selection', '%s %s' % (status, message))
    image.get_selection().none(image)
    save(image, 'gimp-selection.png')
    done(image)


def alpha():
    done(apply_and_save('/gimp/apply/rgba', 'rgba.png', 'gimp-rgba.png', model='fast'))


def gray():
    image = apply_and_save('/gimp/apply/gray', 'gray.png', 'gimp-gray.png', model='fast')
    report(image.get_base_type() == Gimp.ImageBaseType.GRAY, '/gimp/apply/gray/is_gray')
    done(image)


def tiled():
    done(apply_and_save('/gimp/apply/tiled', 'rgb.png', 'gimp-tiled.png', model='fast', tile_size=64))


def model_file():
    done(apply_and_save('/gimp/apply/model_file', 'rgb.png', 'gimp-model-file.png', model='file',
                        model_file='models/fast.safetensors'))


def corrupt():
    image = load('rgb.png')
    status, message = celgan(image, image.get_layers()[:1], model='file', model_file='corrupt.safetensors')
    report(status == Gimp.PDBStatusType.EXECUTION_ERROR, '/gimp/errors/corrupt_model_is_an_execution_error',
           '%s %s' % (status, message))
    report('corrupt.safetensors' in (message or ''), '/gimp/errors/corrupt_model_message_names_the_file',
           message or '')
    print('# corrupt model message: %s' % (message or '').replace('\n', ' | '))
    save(image, 'gimp-corrupt.png')
    # GIMP itself refuses a file argument naming no file (a calling error)
    status, message = celgan(image, image.get_layers()[:1], model='file', model_file='missing.safetensors')
    report(status != Gimp.PDBStatusType.SUCCESS, '/gimp/errors/missing_model_file_is_an_error',
           '%s %s' % (status, message))
    status, message = celgan(image, image.get_layers()[:1], model='file')
    report(status == Gimp.PDBStatusType.EXECUTION_ERROR and 'model-file' in (message or ''),
           '/gimp/errors/no_model_file_is_an_execution_error', '%s %s' % (status, message))
    status, message = celgan(image, image.get_layers()[:1], model='fast', device='no-such-device')
    report(status == Gimp.PDBStatusType.EXECUTION_ERROR and 'Vulkan' in (message or ''),
           '/gimp/errors/unknown_device_is_an_execution_error', '%s %s' % (status, message))
    print('# unknown device message: %s' % (message or '').replace('\n', ' | '))
    save(image, 'gimp-errors.png')
    image.delete()


def two_drawables():
    image = load('rgb.png')
    layer = image.get_layers()[0]
    copy = layer.copy()
    image.insert_layer(copy, None, 0)
    status, message = celgan(image, [layer, copy], model='fast')
    report(status == Gimp.PDBStatusType.CALLING_ERROR, '/gimp/errors/two_drawables_is_a_calling_error',
           '%s %s' % (status, message))
    done(image)


def reference():
    image = load('rgb.png')
    status, message = celgan(image, image.get_layers()[:1], model='reference-test')
    report(status == Gimp.PDBStatusType.EXECUTION_ERROR and 'reference' in (message or ''),
           '/gimp/reference/missing_reference_is_an_error', '%s %s' % (status, message))
    done(image, apply_and_save('/gimp/reference/file', 'rgb.png', 'gimp-reference.png', model='reference-test',
                               reference='style.png'))
    # the same reference given as a layer of an open image
    style = load('style.png')
    image = load('rgb.png')
    status, message = celgan(image, image.get_layers()[:1], model='reference-test',
                             reference_layer=style.get_layers()[0])
    report(status == Gimp.PDBStatusType.SUCCESS, '/gimp/reference/layer', '%s %s' % (status, message))
    save(image, 'gimp-reference-layer.png')
    done(image, style)
    # a style model ignores a reference (with a note)
    done(apply_and_save('/gimp/reference/ignored_by_style_models', 'rgb.png', 'gimp-reference-ignored.png',
                        model='fast', reference='style.png'))


def upscale():
    # a single layer: the image doubles, the layer holds the network's output
    image = apply_and_save('/gimp/upscale/rgb', 'rgb.png', 'gimp-upscale.png', model='upscale-test')
    report(image.get_width() == 400 and image.get_height() == 300, '/gimp/upscale/image_scaled',
           '%dx%d' % (image.get_width(), image.get_height()))
    done(image)
    # with a selection and a second, offset layer: the whole active layer is upscaled, the other layer is
    # scaled by GIMP, the selection is kept (scaled)
    image = load('rgb.png')
    base = image.get_layers()[0]
    other = base.copy()
    image.insert_layer(other, None, 1)
    other.scale(50, 40, False)
    other.set_offsets(10, 20)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 40, 30, 100, 80)
    status, message = celgan(image, [base], model='upscale-test', strength=0.5)
    report(status == Gimp.PDBStatusType.SUCCESS, '/gimp/upscale/with_selection_and_layers',
           '%s %s' % (status, message))
    report(base.get_width() == 400 and base.get_height() == 300, '/gimp/upscale/layer_scaled',
           '%dx%d' % (base.get_width(), base.get_height()))
    ok, ox, oy = other.get_offsets()
    report(other.get_width() == 100 and other.get_height() == 80 and (ox, oy) == (20, 40),
           '/gimp/upscale/other_layer_scaled', '%dx%d at %d,%d' % (other.get_width(), other.get_height(), ox, oy))
    bounds = Gimp.Selection.bounds(image)
    # GIMP scales the selection mask with interpolation: its edge may soften by a pixel
    report(bounds[1] and all(abs(a - b) <= 1 for a, b in zip(bounds[2:], (80, 60, 280, 220))),
           '/gimp/upscale/selection_kept_scaled', str(bounds))
    image.remove_layer(other)
    image.get_selection().none(image)
    save(image, 'gimp-upscale-selection.png')
    done(image)


for name, fn in [('registered', registered), ('rgb', rgb), ('strength', strength), ('selection', selection),
                 ('alpha', alpha), ('gray', gray), ('tiled', tiled), ('model_file', model_file),
                 ('corrupt', corrupt), ('two_drawables', two_drawables), ('reference', reference),
                 ('upscale', upscale)]:
    check('/gimp/' + name, fn)
